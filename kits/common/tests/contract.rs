//! The hook contract seen from outside: a real process (the `toy-kit` example) run the way
//! LifeKeeper and an admin run it, checked for exit codes, log lines and side effects.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{stderr, toy};

struct Env {
    dir: PathBuf,
}

impl Env {
    fn new(name: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("lkh-contract-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("conf")).unwrap();
        Env { dir }
    }
    fn conf(&self, tag: &str, text: &str) {
        let p = self.dir.join("conf").join(format!("{tag}.conf"));
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    fn file(&self) -> PathBuf {
        self.dir.join("resource")
    }
    fn command(&self, exe: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(exe);
        c.args(args)
            .env("LKHELPERS_CONF_DIR", self.dir.join("conf"))
            .env("LKHELPERS_LK_DEFAULTS", self.dir.join("LifeKeeper"))
            .env("LKHELPERS_RUN_DIR", self.dir.join("run"))
            .env("LKHELPERS_NO_SYSLOG", "1")
            .env_remove("RUST_LOG");
        c
    }
    fn run_as(&self, exe: &Path, args: &[&str]) -> Output {
        self.command(exe, args).output().unwrap()
    }
    fn run(&self, args: &[&str]) -> Output {
        self.run_as(&toy(), args)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn restore_succeeds_and_logs_in_the_contract_format() {
    let e = Env::new("ok");
    e.conf("res1", &format!("FILE={}\n", e.file().display()));
    std::fs::write(e.dir.join("LifeKeeper"), "FAILFASTTIMER=7\n").unwrap();
    let o = e.run(&["restore", "-t", "res1", "-i", "ID9", "-A", "-e", "x"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(e.file()).unwrap(),
        "restore id=Some(\"ID9\") fft=Some(7)\n"
    );
    let err = stderr(&o);
    assert!(
        err.contains("lkh-toy[res1]: warning: a warning from restore\n"),
        "{err}"
    );
    assert!(err.contains("lkh-toy[res1]: info: restore: "), "{err}");
}

#[test]
fn exit_codes_follow_the_table() {
    let e = Env::new("codes");
    let f = e.file();
    e.conf("failing", &format!("FILE={}\nMODE=fail\n", f.display()));
    e.conf("fenced", &format!("FILE={}\nMODE=fenced\n", f.display()));
    e.conf("broken", "FILE=relative/path\n");
    let o = e.run(&["quickCheck", "-t", "failing"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("lkh-toy[failing]: error: quickCheck: "),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        e.run(&["quickCheck", "-t", "fenced"]).status.code(),
        Some(3)
    );
    let o = e.run(&["restore", "-t", "broken"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("broken.conf line 1: FILE='relative/path' is not an absolute path"),
        "{}",
        stderr(&o)
    );
    assert_eq!(e.run(&["restore", "-t", "nosuch"]).status.code(), Some(2));
    assert_eq!(
        e.run(&["restore", "-t", "../etc/passwd"]).status.code(),
        Some(2)
    );
    assert_eq!(e.run(&["restore"]).status.code(), Some(2), "no tag");
    assert_eq!(e.run(&["frobnicate"]).status.code(), Some(2));
    assert!(
        !f.exists(),
        "nothing may be changed by refused or failed calls"
    );
}

#[test]
fn a_hanging_action_fails_at_its_deadline() {
    let e = Env::new("hang");
    e.conf(
        "slow",
        &format!("FILE={}\nMODE=hang\nTIMEOUT=1\n", e.file().display()),
    );
    let o = e.run(&["quickCheck", "-t", "slow"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("did not finish within TIMEOUT=1s"),
        "{}",
        stderr(&o)
    );
}

/// A hook the SIGALRM handler cannot reach (as in a wait only a fatal signal ends) is still
/// ended, by the SIGKILL backstop, instead of running on.
#[test]
fn a_deaf_hanging_action_is_killed_after_its_deadline() {
    use std::os::unix::process::ExitStatusExt;
    let e = Env::new("deaf");
    e.conf(
        "deaf",
        &format!("FILE={}\nMODE=deaf\nTIMEOUT=1\n", e.file().display()),
    );
    let o = e.run(&["quickCheck", "-t", "deaf"]);
    assert_eq!(o.status.signal(), Some(9), "{:?} {}", o.status, stderr(&o));
    assert!(
        !e.file().exists(),
        "the action must not have run to its end"
    );
}

/// Runs `exe` the way LifeKeeper runs a gen/app script: `-t TAG -i ID`, from `/`, with a
/// minimal environment (only `PATH`, `LKROOT` and where this test keeps its configuration).
fn run_as_lifekeeper(e: &Env, lkroot: &Path, exe: &Path, tag: &str) -> Output {
    Command::new(exe)
        .args(["-t", tag, "-i", &format!("id-{tag}")])
        .current_dir("/")
        .env_clear()
        .env("PATH", "/bin:/usr/bin")
        .env("LKROOT", lkroot)
        .env("LKHELPERS_CONF_DIR", e.dir.join("conf"))
        .env("LKHELPERS_LK_DEFAULTS", e.dir.join("LifeKeeper"))
        .env("LKHELPERS_RUN_DIR", e.dir.join("run"))
        .env("LKHELPERS_NO_SYSLOG", "1")
        .output()
        .unwrap()
}

/// Lays `script` out as gen/app's copy of `action` for `tag`, as the wizard does.
fn genapp_copy(lkroot: &Path, action: &str, tag: &str, script: &Path) -> PathBuf {
    let base = if action == "recover" {
        "subsys/gen/resources/app/recovery"
    } else {
        "subsys/gen/resources/app/actions"
    };
    let dest = lkroot.join(base).join(format!("!{action}")).join(tag);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(script, &dest).unwrap();
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).unwrap();
    dest
}

/// In LifeKeeper's order for one resource: in service, checked, repaired, out of service.
const ACTIONS: [&str; 4] = ["restore", "quickCheck", "recover", "remove"];

#[test]
fn gen_app_copies_of_the_wrappers_and_of_the_binary_run_every_action() {
    let e = Env::new("genapp");
    // the "installed" binary; replaced below as an upgrade would
    let bin = e.dir.join("sbin/lkh-toy");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(toy(), &bin).unwrap();
    let wrappers = e.dir.join("genapp/toy");
    let o = e.run_as(
        &bin,
        &["genapp", "-t", "app1", "--dir", wrappers.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let answers = String::from_utf8_lossy(&o.stdout);
    for a in ACTIONS {
        assert!(
            answers.contains(&wrappers.join(a).display().to_string()),
            "the wizard answers name the {a} wrapper:\n{answers}"
        );
    }
    assert!(
        answers
            .lines()
            .any(|l| l.starts_with("  Resource Tag ") && l.contains(" app1 (names ")),
        "{answers}"
    );
    assert!(
        stderr(&o).contains("app1.conf: no such file"),
        "{}",
        stderr(&o)
    );
    let again = e.run_as(&bin, &["genapp", "--dir", wrappers.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(0));
    assert!(stderr(&again).contains("kept "), "{}", stderr(&again));

    let lkroot = e.dir.join("opt/LifeKeeper");
    // app1 was created from the wrappers, app2 from the binary itself
    for a in ACTIONS {
        genapp_copy(&lkroot, a, "app1", &wrappers.join(a));
        genapp_copy(&lkroot, a, "app2", &bin);
    }
    // an upgrade replaces the binary; app1's copies exec the new one, app2's stay as they were
    std::fs::remove_file(&bin).unwrap();
    std::fs::copy(toy(), &bin).unwrap();

    for tag in ["app1", "app2"] {
        let file = e.dir.join(format!("{tag}.res"));
        e.conf(tag, &format!("FILE={}\n", file.display()));
        for a in ACTIONS {
            let base = if a == "recover" {
                "recovery"
            } else {
                "actions"
            };
            let script = lkroot.join(format!("subsys/gen/resources/app/{base}/!{a}/{tag}"));
            let o = run_as_lifekeeper(&e, &lkroot, &script, tag);
            assert_eq!(o.status.code(), Some(0), "{tag} {a}: {}", stderr(&o));
            assert_eq!(
                std::fs::read_to_string(&file).unwrap(),
                format!("{a} id=Some(\"id-{tag}\") fft=Some(5)\n"),
                "{tag}: the {a} copy ran {a}"
            );
            assert!(
                stderr(&o).contains(&format!("lkh-toy[{tag}]: info: {a}: ")),
                "{}",
                stderr(&o)
            );
        }
    }

    // failures keep their codes through the copies: quickCheck 1, fenced 3 (recover too)
    let qc = lkroot.join("subsys/gen/resources/app/actions/!quickCheck/app1");
    let rec = lkroot.join("subsys/gen/resources/app/recovery/!recover/app1");
    e.conf("app1", &format!("FILE={}\nMODE=fail\n", e.file().display()));
    assert_eq!(
        run_as_lifekeeper(&e, &lkroot, &qc, "app1").status.code(),
        Some(1)
    );
    e.conf(
        "app1",
        &format!("FILE={}\nMODE=fenced\n", e.file().display()),
    );
    assert_eq!(
        run_as_lifekeeper(&e, &lkroot, &qc, "app1").status.code(),
        Some(3)
    );
    assert_eq!(
        run_as_lifekeeper(&e, &lkroot, &rec, "app1").status.code(),
        Some(3)
    );

    // extended to a node that gave the resource another tag: the message says what to create
    let other = genapp_copy(&lkroot, "restore", "app1-b", &wrappers.join("restore"));
    let o = run_as_lifekeeper(&e, &lkroot, &other, "app1-b");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("app1-b.conf: no such file: create it on this node")
            && stderr(&o).contains("another tag when the resource is extended"),
        "{}",
        stderr(&o)
    );
    assert!(!e.file().exists(), "no action changed anything on refusal");
}

#[test]
fn genapp_never_overwrites_a_file_it_did_not_write_and_install_no_longer_links() {
    let e = Env::new("genapp-foreign");
    let dir = e.dir.join("w");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("quickCheck"), "#!/bin/sh\nexit 0\n").unwrap();
    let o = e.run(&["genapp", "--dir", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not written by genapp"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("quickCheck")).unwrap(),
        "#!/bin/sh\nexit 0\n"
    );
    assert!(!dir.join("restore").exists(), "nothing was written");

    let lkroot = e.dir.join("lk");
    let o = e.run(&["install", "--lkroot", lkroot.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Generic Application"), "{}", stderr(&o));
    assert!(!lkroot.exists(), "no layout nothing calls");
}

#[test]
fn validate_prints_effective_settings_and_refuses_bad_files() {
    let e = Env::new("validate");
    e.conf("good", "FILE=/srv/x\nTIMEOUT=9\n");
    let o = e.run(&["validate", "-t", "good"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for line in ["TIMEOUT=9", "FILE=/srv/x", "MODE=ok", "FAILFASTTIMER=5"] {
        assert!(out.lines().any(|l| l == line), "{line} in:\n{out}");
    }
    e.conf("bad", "FILE=/srv/x\nMODE=sometimes\n");
    let o = e.run(&["validate", "-t", "bad"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.conf line 2"), "{}", stderr(&o));
    assert_eq!(e.run(&["validate", "-t", "none"]).status.code(), Some(2));
}

#[test]
fn syslog_facility_comes_from_lksyslogselector() {
    use std::os::unix::net::UnixDatagram;
    let e = Env::new("syslog");
    let sock_path = e.dir.join("log");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    e.conf("res", &format!("FILE={}\n", e.file().display()));
    let first_priority = |lk: &str| {
        std::fs::write(e.dir.join("LifeKeeper"), lk).unwrap();
        let o = Command::new(toy())
            .args(["restore", "-t", "res"])
            .env("LKHELPERS_CONF_DIR", e.dir.join("conf"))
            .env("LKHELPERS_LK_DEFAULTS", e.dir.join("LifeKeeper"))
            .env("LKHELPERS_RUN_DIR", e.dir.join("run"))
            .env("LKHELPERS_SYSLOG_SOCKET", &sock_path)
            .env_remove("LKHELPERS_NO_SYSLOG")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        // the warning, then the summary
        for _ in 0..2 {
            let n = sock.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        got
    };
    let lines = first_priority("LKSYSLOGSELECTOR=local0\n");
    assert!(lines[0].starts_with("<132>lkhelpers["), "{lines:?}"); // local0.warning
    assert!(lines[1].starts_with("<134>lkhelpers["), "{lines:?}"); // local0.info
    let lines = first_priority("# unset\n");
    assert!(lines[0].starts_with("<180>lkhelpers["), "{lines:?}"); // local6.warning
    let lines = first_priority("LKSYSLOGSELECTOR=nonsense\n");
    assert!(lines[1].starts_with("<182>lkhelpers["), "{lines:?}"); // local6.info
}

#[test]
fn settings_from_flags_and_status_json() {
    let e = Env::new("flags");
    let o = e.run(&[
        "status",
        "-t",
        "adhoc",
        "--no-config",
        "--file",
        "/tmp/x",
        "--mode=fail",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("{\"tag\":\"adhoc\""), "{out}");
    assert!(
        out.contains("\"MODE\":\"fail\"") && out.contains("\"FILE\":\"/tmp/x\""),
        "{out}"
    );
    let o = e.run(&[
        "restore",
        "-t",
        "adhoc",
        "--no-config",
        "--file",
        "/tmp/x",
        "--colour",
        "red",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown option --colour"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn help_documents_contract_keys_and_exit_codes() {
    let o = Env::new("help").run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let h = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "ACTION -t TAG [-i ID]",
        "FAILFASTTIMER (LK)",
        "--timeout",
        "  3  fenced",
        "genapp [-t TAG] [--dir DIR]",
        "!ACTION/TAG -t TAG -i ID",
        "LKSYSLOGSELECTOR",
    ] {
        assert!(h.contains(needle), "help lacks {needle:?}:\n{h}");
    }
}

#[test]
fn man_page_and_help_come_from_the_same_key_table() {
    let env = Env::new("man");
    let help = String::from_utf8_lossy(&env.run(&["--help"]).stdout).into_owned();
    let o = env.run(&["man"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = String::from_utf8_lossy(&o.stdout).replace("\\-", "-");
    assert!(page.starts_with(".TH \"LKH-TOY\" \"8\""), "{page}");
    // Every key the help lists under CONFIGURATION is in the page, and no other.
    let keys = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("  ").or_else(|| l.strip_prefix("\\fB")))
            .filter_map(|l| l.split([' ', '\\']).next())
            .filter(|w| w.len() > 2 && w.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
            .map(str::to_owned)
            .collect()
    };
    let (in_help, in_page) = (keys(&help), keys(&page));
    for k in ["TIMEOUT", "FILE", "MODE", "FAILFASTTIMER"] {
        assert!(
            in_help.contains(&k.to_owned()),
            "help lacks {k}: {in_help:?}"
        );
    }
    for k in &in_help {
        assert!(page.contains(k.as_str()), "man page lacks {k}");
    }
    for k in &in_page {
        assert!(help.contains(k.as_str()), "help lacks {k}");
    }
    let o = env.run(&["man", "lkhelpers"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with(".TH \"LKHELPERS\" \"7\""));
    assert_eq!(env.run(&["man", "bogus"]).status.code(), Some(2));
}

#[test]
fn version_names_the_workspace_version_and_commit() {
    let o = Env::new("version").run(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    let line = String::from_utf8_lossy(&o.stdout).into_owned();
    let want = format!("lkh-toy {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(
        line.starts_with(&want) && line.trim_end().ends_with(')'),
        "{line}"
    );
}

/// The tests that make files another user owns need root (CI runs as root).
fn need_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test must run as root: it makes directories owned by uid 65534"
    );
}

fn chown_nobody(p: &Path) {
    std::os::unix::fs::chown(p, Some(65534), None).unwrap();
}

/// LifeKeeper runs copies of the wrappers as root: genapp walks `--dir` from `/` like every
/// trusted path, refuses a directory another user controls (or one others may write to, or a
/// link) however deep, and creates nothing on the way; a wrong mode is never repaired in place.
#[test]
fn genapp_writes_only_below_directories_root_controls() {
    need_root();
    let e = Env::new("genapp-chain");
    let genapp = |dir: &Path| e.run(&["genapp", "--dir", dir.to_str().unwrap()]);
    let bob = e.dir.join("x/bob");
    std::fs::create_dir_all(&bob).unwrap();
    chown_nobody(&bob);
    for _ in 0..2 {
        let o = genapp(&bob.join("w"));
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("{}: owned by uid 65534, not root", bob.display()))
                && stderr(&o).contains("nothing was written"),
            "{}",
            stderr(&o)
        );
        assert!(
            !bob.join("w").exists(),
            "nothing was created below bob's directory"
        );
    }

    let real = e.dir.join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, e.dir.join("link")).unwrap();
    let o = genapp(&e.dir.join("link/w"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is a symbolic link"), "{}", stderr(&o));
    assert!(
        !real.join("w").exists(),
        "nothing was created through the link"
    );

    let open = e.dir.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = genapp(&open.join("a/b"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("writable by group or others (mode 0777)"),
        "{}",
        stderr(&o)
    );
    assert!(!open.join("a").exists());

    // a wrapper with the right text but a wrong mode is replaced, not chmod'ed through its path
    let ok = e.dir.join("ok");
    assert_eq!(genapp(&ok).status.code(), Some(0));
    use std::os::unix::fs::MetadataExt;
    let restore = ok.join("restore");
    std::fs::set_permissions(&restore, std::fs::Permissions::from_mode(0o777)).unwrap();
    let ino = std::fs::metadata(&restore).unwrap().ino();
    let o = genapp(&ok);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("updated {} ", restore.display())),
        "{}",
        stderr(&o)
    );
    let m = std::fs::metadata(&restore).unwrap();
    assert_eq!((m.mode() & 0o7777, m.ino() != ino), (0o755, true));
}

/// The wrappers exec the binary genapp runs as: one in a directory another user owns would
/// hand that user what LifeKeeper runs as root.
#[test]
fn genapp_refuses_to_wrap_a_binary_another_user_can_replace() {
    need_root();
    let e = Env::new("genapp-bin");
    let home = e.dir.join("home/bob");
    std::fs::create_dir_all(&home).unwrap();
    let bin = home.join("lkh-toy");
    std::fs::copy(toy(), &bin).unwrap();
    chown_nobody(&home);
    let dir = e.dir.join("w");
    let o = e.run_as(&bin, &["genapp", "--dir", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{}: owned by uid 65534, not root", home.display()))
            && stderr(&o).contains(&format!("chown root: {}", home.display())),
        "{}",
        stderr(&o)
    );
    assert!(!dir.exists(), "nothing was written");
    // the packaging names the installed path, which is not judged on the build machine
    let o = e
        .command(&bin, &["genapp", "--dir", dir.to_str().unwrap()])
        .env("LKHELPERS_GENAPP_BINARY", "/usr/sbin/lkh-toy")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn genapp_writes_wrappers_for_the_installed_path_the_packaging_names() {
    let e = Env::new("genapp-packaging");
    let stage = e.dir.join("stage/usr/lib/lkhelpers/genapp/toy");
    let o = Command::new(toy())
        .args(["genapp", "--dir", stage.to_str().unwrap()])
        .env("LKHELPERS_GENAPP_BINARY", "/usr/sbin/lkh-toy")
        .env("LKHELPERS_CONF_DIR", e.dir.join("conf"))
        .env("LKHELPERS_NO_SYSLOG", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for a in ACTIONS {
        let text = std::fs::read_to_string(stage.join(a)).unwrap();
        assert!(
            text.contains(&format!("exec '/usr/sbin/lkh-toy' {a} \"$@\"")),
            "{text}"
        );
        assert!(!text.contains(e.dir.to_str().unwrap()), "{text}");
    }
}

#[test]
fn every_kit_binary_carries_the_marker_check_lifekeeper_looks_for() {
    let bytes = std::fs::read(toy()).unwrap();
    let m = lkh_common::genapp::BINARY_MARKER;
    assert!(
        bytes.windows(m.len()).any(|w| w == m),
        "the marker is missing from the toy kit binary"
    );
}

/// A configuration file that is a link, or a directory others can write to (0777, or 1777:
/// the sticky bit does not stop anyone from adding a `<TAG>.conf`), is refused with the fix,
/// and nothing runs.
#[test]
fn linked_files_and_open_configuration_directories_are_refused() {
    let e = Env::new("unsafe-conf");
    let f = e.file();
    let real = e.dir.join("real.conf");
    std::fs::write(&real, format!("FILE={}\n", f.display())).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    let conf = e.dir.join("conf");
    std::os::unix::fs::symlink(&real, conf.join("linked.conf")).unwrap();
    let o = e.run(&["restore", "-t", "linked"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("linked.conf: is a symbolic link"),
        "{}",
        stderr(&o)
    );

    e.conf("res", &format!("FILE={}\n", f.display()));
    for mode in [0o777, 0o1777] {
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(mode)).unwrap();
        let o = e.run(&["restore", "-t", "res"]);
        assert_eq!(o.status.code(), Some(2), "{mode:o}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("writable by group or others (mode {mode:04o})"))
                && stderr(&o).contains(&format!("run `chmod 0755 {}`", conf.display())),
            "{mode:o}: {}",
            stderr(&o)
        );
    }
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o755)).unwrap();

    // LifeKeeper's defaults file is held to the same rules
    std::os::unix::fs::symlink(&real, e.dir.join("LifeKeeper")).unwrap();
    let o = e.run(&["restore", "-t", "res"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("LifeKeeper: is a symbolic link"),
        "{}",
        stderr(&o)
    );
    assert!(!f.exists(), "no action ran");
    std::fs::remove_file(e.dir.join("LifeKeeper")).unwrap();
    let o = e.run(&["restore", "-t", "res"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// Two hooks of one tag never overlap: while one holds the tag, a second one waits (and with a
/// deadline too short gives up, exit 1, without running); once the first ends it runs.
#[test]
fn hooks_of_one_tag_run_one_at_a_time() {
    use std::io::BufRead;
    use std::process::Stdio;
    let e = Env::new("serial");
    let f = e.file();
    let inside = PathBuf::from(format!("{}.inside", f.display()));
    let go = PathBuf::from(format!("{}.go", f.display()));
    e.conf(
        "res",
        &format!("FILE={}\nMODE=wait\nTIMEOUT=60\n", f.display()),
    );
    let mut a = e
        .command(&toy(), &["restore", "-t", "res"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while !inside.exists() {
        assert!(
            a.try_wait().unwrap().is_none(),
            "restore ended before its action"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let a_inside = format!("restore {}\n", a.id());
    assert_eq!(std::fs::read_to_string(&inside).unwrap(), a_inside);

    // a quickCheck whose deadline ends first gives up without running
    let o = e.run(&["quickCheck", "-t", "res", "--timeout", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "resource res: restore (pid {}) still holds",
            a.id()
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(&inside).unwrap(),
        a_inside,
        "it never entered"
    );

    // another tag is not held up
    e.conf(
        "other",
        &format!("FILE={}\n", e.dir.join("other.res").display()),
    );
    assert_eq!(e.run(&["restore", "-t", "other"]).status.code(), Some(0));

    // a quickCheck with time to spare waits, and runs once restore has finished
    let mut b = e
        .command(&toy(), &["quickCheck", "-t", "res"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(b.stderr.take().unwrap()).lines();
    let waiting = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("waiting for"))
        .expect("quickCheck says it waits");
    assert!(
        waiting.starts_with(&format!(
            "lkh-toy[res]: info: waiting for restore (pid {}) to finish",
            a.id()
        )),
        "{waiting}"
    );
    assert_eq!(
        std::fs::read_to_string(&inside).unwrap(),
        a_inside,
        "it waits outside"
    );
    std::fs::write(&go, "").unwrap();
    assert_eq!(a.wait().unwrap().code(), Some(0));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(b.wait().unwrap().code(), Some(0), "{rest:?}");
    assert_eq!(
        std::fs::read_to_string(&inside).unwrap(),
        format!("quickCheck {}\n", b.id())
    );
    assert!(
        std::fs::read_to_string(&f)
            .unwrap()
            .starts_with("quickCheck ")
    );

    // the layout: <run dir>/<kit>/<TAG>/lock, directories 0700, the lock 0600
    use std::os::unix::fs::MetadataExt;
    for (p, mode) in [
        (e.dir.join("run"), 0o700),
        (e.dir.join("run/toy"), 0o700),
        (e.dir.join("run/toy/res"), 0o700),
        (e.dir.join("run/toy/res/lock"), 0o600),
    ] {
        let m = std::fs::symlink_metadata(&p).unwrap();
        assert_eq!(m.mode() & 0o7777, mode, "{}", p.display());
    }
}

/// Text a kit did not choose (a process name, a file's contents) cannot start a line of its
/// own in the log, and a long one is cut; a 100 KB value in the configuration is refused
/// with a short message.
#[test]
fn newlines_cannot_forge_log_lines_and_long_text_is_cut() {
    let e = Env::new("forge");
    let f = e.file();
    e.conf("res", &format!("FILE={}\nMODE=echo\n", f.display()));
    std::fs::write(
        &f,
        "proc\nlkh-toy[res]: info: restore: forged\r\nend\x1b[2J",
    )
    .unwrap();
    let o = e.run(&["quickCheck", "-t", "res"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        err,
        format!(
            "lkh-toy[res]: warning: {} holds: proc\\x0alkh-toy[res]: info: restore: forged\\x0d\\x0aend\\x1b[2J\n",
            f.display()
        )
    );

    std::fs::write(&f, "x".repeat(100_000)).unwrap();
    let o = e.run(&["quickCheck", "-t", "res"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.len() < 1200, "{} bytes of stderr", err.len());
    assert!(err.trim_end().ends_with("bytes cut)"), "{err}");

    e.conf("big", &format!("FILE=/{}\n", "d".repeat(100_000)));
    let o = e.run(&["restore", "-t", "big"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(o.stderr.len() < 600, "{} bytes of stderr", o.stderr.len());
    assert!(stderr(&o).contains("the limit is 4096"), "{}", stderr(&o));
}

/// `--help` (or a kit command such as `status`) into a pipe nobody reads any more ends
/// quietly by SIGPIPE, never with a panic; a hook keeps Rust's default (SIGPIPE ignored: a
/// hook must not die with its reader) and finishes its action.
#[test]
fn a_closed_pipe_ends_help_quietly_and_never_a_hook() {
    use std::os::unix::process::ExitStatusExt;
    let e = Env::new("sigpipe");
    let closed = || {
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        std::process::Stdio::from(w)
    };
    let o = e
        .command(&toy(), &["--help"])
        .stdout(closed())
        .output()
        .unwrap();
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert_eq!(o.status.signal(), Some(libc::SIGPIPE), "{:?}", o.status);
    e.conf("pipe", &format!("FILE={}\n", e.file().display()));
    let o = e
        .command(&toy(), &["restore", "-t", "pipe"])
        .stdout(closed())
        .stderr(closed())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", o.status);
}
