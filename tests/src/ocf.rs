//! One kit called as Pacemaker calls an OCF resource agent, on this host: through a link
//! `<scratch>/resource.d/lkhelpers/<kit>` to the binary under test (any crate's tests pass
//! their `CARGO_BIN_EXE_…`), the parameters as `OCF_RESKEY_*`, a private run and
//! configuration directory, and nothing else from the caller's environment.
//!
//! [`Agent::probe`] is a `monitor` with `OCF_RESKEY_CRM_meta_interval=0` (how Pacemaker
//! marks a probe, and how resource-agents' `ocf_is_probe` reads it); [`Agent::monitor`] is a
//! recurring one (interval 10 s). Every call is bounded (60 s) and answers its [`Output`].

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::netns::run_limited;
use crate::pcmk::Scratch;

/// How long one agent call may take before the test fails.
const CALL_LIMIT: Duration = Duration::from_secs(60);

/// A kit as an OCF agent in a scratch OCF root (removed on drop).
#[derive(Debug)]
pub struct Agent {
    dir: Scratch,
    path: PathBuf,
    instance: String,
}

impl Agent {
    /// `binary` as agent `ocf:lkhelpers:<kit>`, resource instance `instance`.
    pub fn new(kit: &str, binary: &Path, instance: &str) -> Agent {
        let dir = Scratch::new(&format!("ocf-{kit}"));
        let provider = dir.0.join("resource.d/lkhelpers");
        std::fs::create_dir_all(&provider).expect("scratch OCF root");
        let path = provider.join(kit);
        std::os::unix::fs::symlink(binary, &path).expect("agent link");
        Agent {
            dir,
            path,
            instance: instance.to_owned(),
        }
    }

    /// The scratch directory (the run and configuration directories live under it).
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// `ACTION` with `params` (`OCF_RESKEY_*` and any other variable) as Pacemaker calls it.
    pub fn call(&self, action: &str, params: &[(&str, &str)]) -> Output {
        let mut c = Command::new(&self.path);
        c.arg(action)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("OCF_ROOT", self.dir())
            .env("OCF_RESOURCE_INSTANCE", &self.instance)
            .env("OCF_RESKEY_crm_feature_set", "3.16.2")
            .env("LKHELPERS_NO_SYSLOG", "1")
            .env("LKHELPERS_RUN_DIR", self.dir().join("run"))
            .env("LKHELPERS_CONF_DIR", self.dir().join("conf"))
            .env("LKHELPERS_LK_DEFAULTS", self.dir().join("LifeKeeper"));
        for (k, v) in params {
            c.env(k, v);
        }
        run_limited(&mut c, CALL_LIMIT).unwrap_or_else(|| {
            panic!(
                "{} {action} did not finish within {} s",
                self.path.display(),
                CALL_LIMIT.as_secs()
            )
        })
    }

    /// A probe: `monitor` with interval 0.
    pub fn probe(&self, params: &[(&str, &str)]) -> Output {
        self.call(
            "monitor",
            &[params, &[("OCF_RESKEY_CRM_meta_interval", "0")]].concat(),
        )
    }

    /// A recurring `monitor` (interval 10 s): the resource is meant to run here.
    pub fn monitor(&self, params: &[(&str, &str)]) -> Output {
        self.call(
            "monitor",
            &[params, &[("OCF_RESKEY_CRM_meta_interval", "10000")]].concat(),
        )
    }
}

/// Asserts that `o` exited with `want`, showing its stderr when it did not.
#[track_caller]
pub fn assert_code(o: &Output, want: i32, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(want),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
