//! The OCF front end seen from outside: the toy kit run as Pacemaker (and `ocf-tester`) run a
//! resource agent, through a link under a `resource.d` directory, with parameters in the
//! environment. The meta-data is checked against the schemas Debian ships (resource-agents'
//! DTD, pcs's OCF 1.0/1.1 schemas), installed when missing by the test bed's one mechanism
//! (`tests::host`; as root, else a loud skip — a failure under `LKH_VM_REQUIRED`/`CI`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{stderr, toy};

use tests::host;

struct Agent {
    dir: PathBuf,
    path: PathBuf,
}

impl Agent {
    /// A private OCF root with `resource.d/lkhelpers/toy` → the toy kit (readable by
    /// `nobody`, which ocf-tester runs meta-data as).
    fn new(name: &str) -> Agent {
        let dir = std::env::temp_dir().join(format!("lkh-ocf-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let provider = dir.join("resource.d/lkhelpers");
        std::fs::create_dir_all(&provider).unwrap();
        let bin = dir.join("lkh-toy");
        std::fs::copy(toy(), &bin).unwrap();
        for d in [&dir, &dir.join("resource.d"), &provider] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = provider.join("toy");
        std::os::unix::fs::symlink(&bin, &path).unwrap();
        Agent { dir, path }
    }

    fn file(&self) -> PathBuf {
        self.dir.join("resource")
    }

    fn run(&self, action: &str, params: &[(&str, &str)]) -> Output {
        let mut c = Command::new(&self.path);
        c.arg(action)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("OCF_ROOT", &self.dir)
            .env("OCF_RESOURCE_INSTANCE", "toy1")
            .env("LKHELPERS_NO_SYSLOG", "1")
            .env("LKHELPERS_RUN_DIR", self.dir.join("run"))
            .env("LKHELPERS_CONF_DIR", self.dir.join("conf"))
            .env("LKHELPERS_LK_DEFAULTS", self.dir.join("LifeKeeper"))
            .env("OCF_RESKEY_file", self.file())
            // Pacemaker sends this with every action; it is no parameter of the agent's
            .env("OCF_RESKEY_crm_feature_set", "3.16.2");
        for (k, v) in params {
            c.env(k, v);
        }
        // Another test thread's fork may still hold the descriptor `fs::copy` wrote this copy
        // through, until its child execs: "Text file busy" passes in a moment.
        for _ in 0..100 {
            match c.output() {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                other => return other.unwrap(),
            }
        }
        panic!(
            "{}: still \"Text file busy\" after 2 s",
            self.path.display()
        )
    }

    fn code(&self, action: &str, params: &[(&str, &str)]) -> Option<i32> {
        self.run(action, params).status.code()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn lifecycle_as_pacemaker_runs_it() {
    let a = Agent::new("life");
    assert_eq!(a.code("monitor", &[]), Some(7), "a probe before start");
    assert_eq!(a.code("stop", &[]), Some(0), "stop of a stopped resource");
    assert_eq!(a.code("start", &[]), Some(0));
    assert!(
        std::fs::read_to_string(a.file())
            .unwrap()
            .starts_with("restore ")
    );
    assert_eq!(a.code("start", &[]), Some(0), "start twice");
    assert_eq!(a.code("monitor", &[]), Some(0));
    assert_eq!(a.code("recover", &[]), Some(0));
    assert_eq!(a.code("stop", &[]), Some(0));
    assert_eq!(a.code("monitor", &[]), Some(7), "monitor after stop");
    assert_eq!(a.code("stop", &[]), Some(0), "stop twice");
    let o = a.run("monitor", &[]);
    assert!(
        stderr(&o).contains("lkh-toy[toy1]: info: monitor: not running:"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn failures_map_to_ocf_codes_with_a_reason() {
    let a = Agent::new("codes");
    let o = a.run("start", &[("OCF_RESKEY_mode", "fenced")]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "start while fenced: generic error"
    );
    assert!(
        stderr(&o).contains("ocf-exit-reason:") && stderr(&o).contains("held by another node"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        a.code("monitor", &[("OCF_RESKEY_mode", "fenced")]),
        Some(7),
        "fenced: not running here"
    );
    assert_eq!(a.code("monitor", &[("OCF_RESKEY_mode", "fail")]), Some(1));
    for (k, v) in [
        ("OCF_RESKEY_mode", "sometimes"),
        ("OCF_RESKEY_colour", "red"),
    ] {
        let o = a.run("validate-all", &[(k, v)]);
        assert_eq!(o.status.code(), Some(6), "{k}={v}: {}", stderr(&o));
        assert!(stderr(&o).contains("ocf-exit-reason:"), "{}", stderr(&o));
        assert_eq!(a.code("start", &[(k, v)]), Some(6), "{k}={v}");
    }
    let o = a.run("validate-all", &[("OCF_RESKEY_mode", "sometimes")]);
    assert!(
        stderr(&o).contains("ocf-exit-reason:parameter mode (OCF_RESKEY_mode): MODE='sometimes'"),
        "a bad value is named as the parameter: {}",
        stderr(&o)
    );
    assert!(!a.file().exists(), "refused calls changed nothing");
    let o = a.run("validate-all", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(a.code("migrate_to", &[]), Some(3));
    assert_eq!(a.code("", &[]), Some(3));
    let no_file = Command::new(&a.path)
        .arg("validate-all")
        .env_clear()
        .env("LKHELPERS_NO_SYSLOG", "1")
        .output()
        .unwrap();
    assert_eq!(no_file.status.code(), Some(6), "required parameter missing");
    assert!(
        stderr(&no_file).contains("FILE is not set") && stderr(&no_file).contains("OCF parameters"),
        "{}",
        stderr(&no_file)
    );
}

#[test]
fn check_level_and_pacemaker_timeout() {
    let a = Agent::new("depth");
    assert_eq!(a.code("start", &[]), Some(0));
    // the toy's depth key is MODE: level 20 makes its monitor fail, 10 (and 15) does not
    assert_eq!(a.code("monitor", &[("OCF_CHECK_LEVEL", "10")]), Some(0));
    assert_eq!(a.code("monitor", &[("OCF_CHECK_LEVEL", "15")]), Some(0));
    assert_eq!(a.code("monitor", &[("OCF_CHECK_LEVEL", "20")]), Some(1));
    let o = a.run(
        "monitor",
        &[
            ("OCF_RESKEY_mode", "hang"),
            ("OCF_RESKEY_timeout", "60"),
            ("OCF_RESKEY_CRM_meta_timeout", "2000"),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("did not finish within TIMEOUT=1s"),
        "Pacemaker's 2 s timeout caps TIMEOUT=60: {}",
        stderr(&o)
    );
}

#[test]
fn meta_data_validates_against_the_installed_schemas() {
    let a = Agent::new("meta");
    let o = Command::new(&a.path)
        .arg("meta-data")
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "meta-data needs no parameters");
    let xml = String::from_utf8(o.stdout).unwrap();
    assert!(
        xml.starts_with(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">"
        ),
        "{xml}"
    );
    for needle in [
        "<resource-agent name=\"toy\"",
        "<parameter name=\"file\" unique=\"0\" required=\"0\">",
        "<parameter name=\"mode\"",
        "<content type=\"integer\" default=\"5\"/>",
        "<action name=\"monitor\" timeout=\"15s\" interval=\"60s\" depth=\"20\"/>",
    ] {
        assert!(xml.contains(needle), "{needle} in\n{xml}");
    }
    let file = a.dir.join("meta.xml");
    std::fs::write(&file, &xml).unwrap();
    let test = "meta_data_validates_against_the_installed_schemas";
    if !host::need(test, &[host::OCF_TOOLS, host::OCF_SCHEMAS].concat()) {
        return;
    }
    let schemas = [
        ("--dtdvalid", "/usr/share/resource-agents/ra-api-1.dtd"),
        ("--relaxng", "/usr/share/pcs/data/ocf-1.0.rng"),
        ("--relaxng", "/usr/share/pcs/data/ocf-1.1.rng"),
    ];
    for (_, schema) in schemas {
        assert!(
            Path::new(schema).exists(),
            "{schema} is missing although resource-agents and pcs are installed"
        );
    }
    for (how, schema) in schemas {
        let o = Command::new("xmllint")
            .args(["--noout", how, schema])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{schema}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn ocf_tester_passes() {
    if !host::need("ocf_tester_passes", host::OCF_TOOLS) {
        return;
    }
    let a = Agent::new("tester");
    let o = Command::new("/usr/sbin/ocf-tester")
        .args(["-n", "toy1", "-o"])
        .arg(format!("file={}", a.file().display()))
        .arg(&a.path)
        .env("LKHELPERS_NO_SYSLOG", "1")
        .env("LKHELPERS_RUN_DIR", a.dir.join("run"))
        .env("LKHELPERS_LK_DEFAULTS", a.dir.join("LifeKeeper"))
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "ocf-tester failed:\n{out}");
    assert!(out.contains("passed all tests"), "{out}");
}
