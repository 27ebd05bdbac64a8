//! The hook contract seen from outside: a real process (the `toy-kit` example) run the way
//! LifeKeeper and an admin run it, checked for exit codes, log lines and side effects.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn toy() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join("examples/toy-kit");
    assert!(
        p.exists(),
        "{} missing: run through `cargo test`, which builds examples",
        p.display()
    );
    p
}

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
    fn run_as(&self, exe: &Path, args: &[&str]) -> Output {
        Command::new(exe)
            .args(args)
            .env("LKHELPERS_CONF_DIR", self.dir.join("conf"))
            .env("LKHELPERS_LK_DEFAULTS", self.dir.join("LifeKeeper"))
            .env("LKHELPERS_NO_SYSLOG", "1")
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
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

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
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

#[test]
fn install_links_actions_and_dispatches_by_link_name() {
    let e = Env::new("install");
    let lkroot = e.dir.join("lk");
    let root = lkroot.to_str().unwrap();
    let o = e.run(&["install", "--lkroot", root]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let actions = lkroot.join("subsys/lkhelpers/Resources/toy/actions");
    for a in ["restore", "remove", "quickCheck", "recover"] {
        let target = std::fs::read_link(actions.join(a)).unwrap();
        assert_eq!(target, std::fs::canonicalize(toy()).unwrap());
    }
    let again = e.run(&["install", "--lkroot", root]);
    assert_eq!(again.status.code(), Some(0));
    assert!(stderr(&again).contains("kept "), "{}", stderr(&again));

    e.conf("viaLink", &format!("FILE={}\n", e.file().display()));
    let o = e.run_as(&actions.join("remove"), &["-t", "viaLink", "-i", "x"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(e.file())
            .unwrap()
            .starts_with("remove ")
    );

    std::fs::remove_file(actions.join("recover")).unwrap();
    std::fs::write(actions.join("recover"), "#!/bin/sh\n").unwrap();
    let o = e.run(&["install", "--lkroot", root]);
    assert_eq!(o.status.code(), Some(2), "a real file is not overwritten");
    assert_eq!(
        std::fs::read_to_string(actions.join("recover")).unwrap(),
        "#!/bin/sh\n"
    );
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
        "install [--lkroot DIR]",
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
