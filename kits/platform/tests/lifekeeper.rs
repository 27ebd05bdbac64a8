//! `check-lifekeeper` and `fix` against captured LifeKeeper trees (copied
//! to scratch directories whenever something may be written).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Scratch, code, copy_tree, fixture, run, stderr, stdout};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A writable LifeKeeper tree plus a sysroot, both in scratch space.
struct Node {
    _dir: Scratch,
    sysroot: PathBuf,
    defaults: PathBuf,
    lkroot: PathBuf,
}

impl Node {
    fn new(platform: &str, lk: &str) -> Node {
        let dir = Scratch::new(lk);
        let sysroot = dir.path().join("root");
        copy_tree(&fixture(platform), &sysroot);
        copy_tree(&fixture(lk), &sysroot);
        Node {
            defaults: sysroot.join("etc/default/LifeKeeper"),
            lkroot: sysroot.join("opt/LifeKeeper"),
            sysroot,
            _dir: dir,
        }
    }

    fn args<'a>(&'a self, cmd: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec![
            cmd,
            "--no-network",
            "--sysroot",
            s(&self.sysroot),
            "--defaults",
            s(&self.defaults),
            "--lkroot",
            s(&self.lkroot),
        ];
        v.extend_from_slice(extra);
        v
    }

    fn remove_scsi3_kit(&self) {
        fs::remove_dir_all(self.lkroot.join("subsys/scsi/resources/scsi3")).unwrap();
    }

    /// The defaults file still holds `before` and no backup was made: nothing changed.
    fn assert_unchanged(&self, before: &[u8]) {
        assert_eq!(fs::read(&self.defaults).unwrap(), before);
        assert!(self.backups().is_empty());
    }

    fn backups(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(self.defaults.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains(".lkh-backup-"))
            .collect();
        v.sort();
        v
    }
}

/// The run's stderr contains `want`.
fn stderr_has(o: &std::process::Output, want: &str) {
    assert!(stderr(o).contains(want), "{}", stderr(o));
}

fn check(platform: &str, lk: &str) -> std::process::Output {
    let root = fixture(platform);
    let lkdir = fixture(lk);
    run(&[
        "check-lifekeeper",
        "--no-network",
        "--sysroot",
        s(&root),
        "--defaults",
        s(&lkdir.join("etc/default/LifeKeeper")),
        "--lkroot",
        s(&lkdir.join("opt/LifeKeeper")),
    ])
}

#[test]
fn clean_onprem_install_is_consistent() {
    let o = check("hyperv-gen2", "lk-clean");
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("LK_SERV_ENV is not set"), "{out}");
    assert!(out.ends_with("result: consistent\n"), "{out}");
}

#[test]
fn misdetected_install_on_hyperv_is_inconsistent_with_documented_remedy() {
    let o = check("hyperv-gen1", "lk-misdetected");
    assert_eq!(code(&o), 1);
    let out = stdout(&o);
    assert!(out.contains("recorded: LK_SERV_ENV=\"AZURE\""), "{out}");
    assert!(out.contains("MISMATCH: ") && out.contains("LifeKeeper:10: LK_SERV_ENV=\"AZURE\" records Azure, but this node was detected as on-premises Hyper-V guest (hyperv)"), "{out}");
    assert!(out.contains("  fix: stop LifeKeeper, re-run the setup script from the LifeKeeper installation image and select the non-Azure environment that matches this node; SIOS says not to edit LK_SERV_ENV by hand (https://docs.us.sios.com/spslinux/9.9.0/en/topic/parameters-list)"), "{out}");
    assert!(
        out.contains("MISMATCH: the SCSI-3 PR recovery kit (steeleye-lkSCSI3) is installed"),
        "{out}"
    );
    assert!(out.ends_with("result: inconsistent\n"), "{out}");
    stderr_has(&o, "lkh-platform: warning: ");
}

#[test]
fn azure_offline_cannot_be_judged() {
    let o = check("azure", "lk-misdetected");
    assert_eq!(code(&o), 1);
    let out = stdout(&o);
    assert!(out.contains("only a guess"), "{out}");
    assert!(out.ends_with("result: undetermined\n"), "{out}");
}

#[test]
fn onprem_azure_stack_hci_with_azure_record_is_inconsistent() {
    let o = check("azure-stack-hci", "lk-misdetected");
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).ends_with("result: inconsistent\n"));
}

#[test]
fn missing_defaults_file_is_a_configuration_error() {
    let root = fixture("hyperv-gen2");
    let o = run(&[
        "check-lifekeeper",
        "--no-network",
        "--sysroot",
        s(&root),
        "--defaults",
        "/nonexistent/LifeKeeper",
    ]);
    assert_eq!(code(&o), 2);
    stderr_has(
        &o,
        "lkh-platform: error: /nonexistent/LifeKeeper: not found; is LifeKeeper installed? pass its defaults file with --defaults",
    );
    let lk = fixture("lk-clean");
    let o = run(&[
        "check-lifekeeper",
        "--no-network",
        "--sysroot",
        s(&root),
        "--defaults",
        s(&lk.join("etc/default/LifeKeeper")),
        "--lkroot",
        "/nonexistent/LK",
    ]);
    assert_eq!(code(&o), 2);
    stderr_has(&o, "/nonexistent/LK: not a directory");
}

#[test]
fn fix_on_a_consistent_node_does_nothing() {
    let n = Node::new("hyperv-gen2", "lk-clean");
    let before = fs::read(&n.defaults).unwrap();
    let o = run(&n.args("fix", &[]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("nothing to do"));
    n.assert_unchanged(&before);
}

#[test]
fn fix_dry_run_shows_the_plan_and_changes_nothing() {
    let n = Node::new("hyperv-gen2", "lk-misdetected");
    let before = fs::read(&n.defaults).unwrap();
    let o = run(&n.args("fix", &["--dry-run", "--lk-serv-env", "GENERIC"]));
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "manual steps remain: {out}");
    assert!(out.contains("plan:\n  - back up "), "{out}");
    assert!(out.contains(".lkh-backup-"), "{out}");
    assert!(
        out.contains("  - set LK_SERV_ENV=\"GENERIC\" in ") && out.contains("(was \"AZURE\")"),
        "{out}"
    );
    assert!(
        out.contains(
            "  - by hand: re-running setup on a correctly detected node does not select it"
        ),
        "{out}"
    );
    assert!(out.contains("dry run: nothing changed"), "{out}");
    n.assert_unchanged(&before);
}

#[test]
fn fix_without_a_value_only_guides() {
    let n = Node::new("hyperv-gen2", "lk-misdetected");
    n.remove_scsi3_kit();
    let before = fs::read(&n.defaults).unwrap();
    let o = run(&n.args("fix", &[]));
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert!(
        out.contains("  - by hand: stop LifeKeeper, re-run setup from the installation image"),
        "{out}"
    );
    assert!(out.contains("result: manual steps remain"), "{out}");
    n.assert_unchanged(&before);
}

#[test]
fn fix_applies_with_a_backup_and_keeps_the_rest_of_the_file() {
    let n = Node::new("hyperv-gen2", "lk-misdetected");
    n.remove_scsi3_kit();
    fs::set_permissions(&n.defaults, fs::Permissions::from_mode(0o640)).unwrap();
    let before = fs::read_to_string(&n.defaults).unwrap();
    let o = run(&n.args("fix", &["--lk-serv-env", "GENERIC"]));
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}{}", stderr(&o));
    assert!(out.contains("done: backed up "), "{out}");
    assert!(out.contains("done: set LK_SERV_ENV=GENERIC in "), "{out}");
    assert!(out.ends_with("result: consistent\n"), "{out}");

    let backups = n.backups();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(fs::read_to_string(&backups[0]).unwrap(), before);
    let after = fs::read_to_string(&n.defaults).unwrap();
    assert_eq!(
        after,
        before.replace("LK_SERV_ENV=AZURE\n", "LK_SERV_ENV=GENERIC\n")
    );
    let mode = fs::metadata(&n.defaults).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640);

    // Second run: consistent now, nothing to do, no second backup.
    let o = run(&n.args("fix", &["--lk-serv-env", "GENERIC"]));
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("nothing to do"));
    assert_eq!(n.backups().len(), 1);
}

#[test]
fn fix_refuses_while_lifekeeper_runs() {
    let n = Node::new("hyperv-gen2", "lk-misdetected");
    copy_tree(&fixture("lk-running/proc"), &n.sysroot.join("proc"));
    let before = fs::read(&n.defaults).unwrap();
    let o = run(&n.args("fix", &["--lk-serv-env", "GENERIC"]));
    assert_eq!(code(&o), 1);
    stderr_has(
        &o,
        "lkh-platform: error: LifeKeeper is running (lcm (pid 2301), lkcheck (pid 2377)); stop it (lkstop) and run fix again; nothing changed",
    );
    n.assert_unchanged(&before);
}

#[test]
fn fix_refuses_bad_values_with_exit_2() {
    let n = Node::new("hyperv-gen2", "lk-misdetected");
    let before = fs::read(&n.defaults).unwrap();
    for bad in ["a b", "", "x;rm -rf", "\"q\""] {
        let o = run(&n.args("fix", &["--lk-serv-env", bad]));
        assert_eq!(code(&o), 2, "{bad:?}");
        stderr_has(&o, "not a plain value");
    }
    let o = run(&n.args("fix", &["--lk-serv-env", "AZURE_AGAIN"]));
    assert_eq!(code(&o), 2);
    stderr_has(&o, "names Azure, but this node is hyperv");
    n.assert_unchanged(&before);
}

#[test]
fn fix_refuses_on_a_guess() {
    let n = Node::new("hyperv-azure-tag", "lk-misdetected");
    let before = fs::read(&n.defaults).unwrap();
    let o = run(&n.args("fix", &["--lk-serv-env", "AZURE"]));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    stderr_has(&o, "cannot be judged surely enough");
    assert_eq!(fs::read(&n.defaults).unwrap(), before);
}
