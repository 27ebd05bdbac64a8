//! lkh-scsipr's files seen from outside, without a disk: a `node.key` another user could steer
//! is refused (exit 2) before any device is even looked at, a 100 KB `DEVICE=` gives one
//! short refusal, remove clears the watch marker before it does anything else, `watch`
//! judges every valid tag (`.x` and `x.fenced` too), and `watch` leaves a resource alone
//! while one of its hooks holds the tag's lock.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Env {
    dir: PathBuf,
}

impl Env {
    fn new(name: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("lkh-scsipr-rs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("conf")).unwrap();
        Env { dir }
    }
    fn conf_dir(&self) -> PathBuf {
        self.dir.join("conf")
    }
    fn conf(&self, tag: &str, text: &str) {
        let p = self.conf_dir().join(format!("{tag}.conf"));
        std::fs::write(&p, text).unwrap();
        chmod(&p, 0o600);
    }
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_lkh-scsipr"))
            .args(args)
            .env("LKHELPERS_CONF_DIR", self.conf_dir())
            .env("LKHELPERS_LK_DEFAULTS", self.dir.join("LifeKeeper"))
            .env("LKHELPERS_RUN_DIR", self.dir.join("run"))
            .env("LKHELPERS_NO_SYSLOG", "1")
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    }
    /// A watch marker as restore leaves it.
    fn marker(&self, tag: &str) -> PathBuf {
        let d = self.dir.join("run/scsipr").join(tag);
        std::fs::create_dir_all(&d).unwrap();
        for p in [self.dir.join("run"), self.dir.join("run/scsipr"), d.clone()] {
            chmod(&p, 0o700);
        }
        let m = d.join("watch");
        std::fs::write(&m, "in-service\n").unwrap();
        chmod(&m, 0o600);
        m
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const NO_DISK: &str = "DEVICE=/dev/disk/by-id/lkh-test-no-such-disk\n";

#[test]
fn a_node_key_others_could_steer_is_refused_before_any_device_is_touched() {
    let e = Env::new("key");
    e.conf("db", NO_DISK);
    let key = e.conf_dir().join("node.key");
    let peer = e.dir.join("peer.key");
    std::fs::write(&peer, "0x4c4b0000000000b2\n").unwrap();
    chmod(&peer, 0o600);
    std::os::unix::fs::symlink(&peer, &key).unwrap();
    for action in ["restore", "quickCheck", "recover", "remove"] {
        let o = e.run(&[action, "-t", "db"]);
        assert_eq!(o.status.code(), Some(2), "{action}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("node.key: is a symbolic link"),
            "{action}: {}",
            stderr(&o)
        );
        // refused on the key: the (missing) device was never looked at
        assert!(
            !stderr(&o).contains("no-such-disk"),
            "{action}: {}",
            stderr(&o)
        );
    }
    std::fs::remove_file(&key).unwrap();
    std::fs::write(&key, "0x4c4b0000000000a1\n").unwrap();
    chmod(&key, 0o620);
    let o = e.run(&["restore", "-t", "db"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("chmod go-w"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("no-such-disk"), "{}", stderr(&o));
    chmod(&key, 0o600);
    chmod(&e.conf_dir(), 0o1777);
    let o = e.run(&["restore", "-t", "db"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("chmod 0755"), "{}", stderr(&o));
    chmod(&e.conf_dir(), 0o755);
    // with a sound key the refusal is about the device
    let o = e.run(&["restore", "-t", "db"]);
    assert!(stderr(&o).contains("no-such-disk"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&key).unwrap(),
        "0x4c4b0000000000a1\n"
    );
}

#[test]
fn a_100_kb_device_value_is_refused_in_one_short_line() {
    let e = Env::new("big");
    e.conf(
        "db",
        &format!("DEVICE=\"{}\"\n", "/dev/sdb ".repeat(12_000)),
    );
    let o = e.run(&["restore", "-t", "db"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(o.stderr.len() < 600, "{} bytes of stderr", o.stderr.len());
}

#[test]
fn remove_clears_the_watch_marker_before_its_work() {
    let e = Env::new("remove");
    // a name that is no block device: remove fails (exit 2), but watch no longer judges it
    e.conf("db", "DEVICE=/etc/passwd\nKEY=0x4c4b0000000000a1\n");
    let m = e.marker("db");
    let o = e.run(&["remove", "-t", "db"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!m.exists(), "{}", stderr(&o));
    // a disk this node does not see: remove succeeds (this node cannot write to it), and
    // the marker is gone as well
    e.conf("gone", &format!("{NO_DISK}KEY=0x4c4b0000000000a1\n"));
    let m = e.marker("gone");
    let o = e.run(&["remove", "-t", "gone"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot write to a disk it does not see"),
        "{}",
        stderr(&o)
    );
    assert!(!m.exists(), "{}", stderr(&o));
}

#[test]
fn watch_judges_every_valid_tag() {
    let e = Env::new("watch");
    for tag in ["x", "x.fenced", ".x"] {
        e.conf(tag, &format!("{NO_DISK}KEY=0x4c4b0000000000a1\n"));
        e.marker(tag);
    }
    let o = e.run(&["watch", "--once"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    for tag in ["x", "x.fenced", ".x"] {
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("lkh-scsipr: warning: {tag}: "))
                    && l.contains("no-such-disk")),
            "{tag} was not judged:\n{err}"
        );
    }
}

/// A hook of resource `x` holds its lock (here this test process, through the same run-state
/// layer the hooks use): `watch` does not judge `x` meanwhile but judges `y`; once the hook
/// has finished, `x` is judged again.
#[test]
fn watch_leaves_a_resource_alone_while_its_hook_runs() {
    use lkh_common::runstate::RunDir;
    use lkh_common::{Deadline, Tag};
    let e = Env::new("watch-lock");
    for tag in ["x", "y"] {
        e.conf(tag, &format!("{NO_DISK}KEY=0x4c4b0000000000a1\n"));
        e.marker(tag);
    }
    let judged = |err: &str, tag: &str| {
        err.lines().any(|l| {
            l.starts_with(&format!("lkh-scsipr: warning: {tag}: ")) && l.contains("no-such-disk")
        })
    };
    let dir = RunDir::at(e.dir.join("run"), "scsipr")
        .tag(&Tag::parse("x").unwrap())
        .unwrap();
    let lock = dir
        .lock(
            "restore",
            Deadline::after(std::time::Duration::from_secs(5)),
        )
        .unwrap();
    let o = e.run(&["watch", "--once"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!judged(&err, "x"), "x judged while its hook ran:\n{err}");
    assert!(judged(&err, "y"), "y not judged:\n{err}");
    drop(lock);
    let err = stderr(&e.run(&["watch", "--once"]));
    assert!(judged(&err, "x"), "x not judged after its hook:\n{err}");
}

/// A LifeKeeper resource's TIMEOUT must hold the challenge window (twice the defense interval
/// min(FAILFASTTIMER, 2 s), plus 1 s) and a takeover after it (2 s): `validate` and restore
/// refuse a shorter one with exit 2, before any device is looked at; quickCheck and remove of
/// an existing resource still run (an upgrade must never block a switchover).
#[test]
fn a_timeout_that_cannot_hold_the_challenge_window_is_refused() {
    let e = Env::new("window");
    let lk = e.dir.join("LifeKeeper");
    std::fs::write(&lk, "FAILFASTTIMER=5\n").unwrap();
    chmod(&lk, 0o644);
    // FAILFASTTIMER=5: interval 2 s, window 5 s, TIMEOUT at least 7
    e.conf("short", &format!("{NO_DISK}TIMEOUT=6\n"));
    e.conf("enough", &format!("{NO_DISK}TIMEOUT=7\n"));
    for args in [
        &["validate", "-t", "short"][..],
        &["restore", "-t", "short"],
    ] {
        let o = e.run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("TIMEOUT=6")
                && stderr(&o).contains("challenge window (5 s")
                && stderr(&o).contains("at least 7 s"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    let o = e.run(&["validate", "-t", "enough"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // FAILFASTTIMER=1: window 3 s, so TIMEOUT=6 is enough
    std::fs::write(&lk, "FAILFASTTIMER=1\n").unwrap();
    let o = e.run(&["validate", "-t", "short"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // quickCheck of the short one is not refused for it (it fails on the missing disk instead)
    std::fs::write(&lk, "FAILFASTTIMER=5\n").unwrap();
    let o = e.run(&["quickCheck", "-t", "short"]);
    assert!(!stderr(&o).contains("challenge window"), "{}", stderr(&o));
    // FAILFASTTIMER set nowhere: the key table's 5 holds, so TIMEOUT=6 is refused again
    std::fs::write(&lk, "").unwrap();
    let o = e.run(&["validate", "-t", "short"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("challenge window (5 s"),
        "{}",
        stderr(&o)
    );
}
