//! `check-lifekeeper`'s gen/app wiring check, on LifeKeeper trees built in scratch space:
//! wrappers as `lkh-<kit> genapp` writes them, a fake `lkh-nas` (a shell script answering
//! `--version` and `validate` like the real one), copies of ELF binaries.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{Scratch, bin, code, fixture, stderr, stdout};
use lkh_common::Action;
use lkh_common::genapp::{Wrapper, copy_path};

/// A fake kit binary: `--version` prints `lkh-<kit> 0.1.0`, `validate -t TAG` prints
/// `$LKHELPERS_CONF_DIR/TAG.conf` (exit 0) or a one-line reason on stderr (exit 2). It carries
/// the string of every lkhelpers binary, like the real ones.
fn fake_kit(kit: &str) -> String {
    let marker = String::from_utf8_lossy(lkh_platform::wiring::BINARY_MARKER);
    format!(
        r#"#!/bin/sh
# {marker}: check-lifekeeper runs only programs that carry it
case "$1" in
--version) echo "lkh-{kit} 0.1.0" ;;
validate)
    f="$LKHELPERS_CONF_DIR/$3.conf"
    if [ -f "$f" ]; then cat "$f"; exit 0; fi
    echo "lkh-{kit}: error: validate: $f: not found: create it (see lkh-{kit} --help)" >&2
    exit 2 ;;
*) echo "fake lkh-{kit} must not be run with: $*" >&2; exit 1 ;;
esac
"#
    )
}

struct Node {
    dir: Scratch,
    lkroot: PathBuf,
    defaults: PathBuf,
    conf: PathBuf,
    nas: PathBuf,
}

fn write_exec(path: &Path, content: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

impl Node {
    /// LifeKeeper with no gen/app resources, LKCHECKINTERVAL unset, and `lkh-nas` installed.
    fn new(name: &str) -> Node {
        let dir = Scratch::new(name);
        let lkroot = dir.path().join("opt/LifeKeeper");
        fs::create_dir_all(lkroot.join("subsys/gen/resources/app/actions")).unwrap();
        let defaults = dir.path().join("etc/default/LifeKeeper");
        fs::create_dir_all(defaults.parent().unwrap()).unwrap();
        fs::copy(fixture("lk-clean/etc/default/LifeKeeper"), &defaults).unwrap();
        let conf = dir.path().join("etc/lkhelpers");
        fs::create_dir_all(&conf).unwrap();
        let nas = dir.path().join("usr/sbin/lkh-nas");
        write_exec(&nas, fake_kit("nas").as_bytes());
        Node {
            dir,
            lkroot,
            defaults,
            conf,
            nas,
        }
    }

    fn copy(&self, action: Action, tag: &str) -> PathBuf {
        copy_path(&self.lkroot, action, tag)
    }

    /// Puts the `wrapper`'s text where gen/app keeps the `dir` copy of `tag`.
    fn wrap(&self, dir: Action, tag: &str, wrapper: Action, binary: &Path) {
        let w = Wrapper {
            kit: "nas".into(),
            action: wrapper,
            binary: binary.to_path_buf(),
        };
        write_exec(&self.copy(dir, tag), w.render().as_bytes());
    }

    /// All four wrappers of `tag` in place and its configuration written.
    fn resource(&self, tag: &str) {
        for a in Action::ALL {
            self.wrap(a, tag, a, &self.nas);
        }
        self.conf(tag, "TIMEOUT=20\nMOUNTPOINT=/srv/data\n");
    }

    fn conf(&self, tag: &str, text: &str) {
        fs::write(self.conf.join(format!("{tag}.conf")), text).unwrap();
    }

    fn check(&self, extra: &[&str]) -> Output {
        let mut c = bin();
        c.env("LKHELPERS_CONF_DIR", &self.conf)
            .arg("check-lifekeeper")
            .arg("--no-network")
            .arg("--sysroot")
            .arg(fixture("hyperv-gen2"))
            .arg("--defaults")
            .arg(&self.defaults)
            .arg("--lkroot")
            .arg(&self.lkroot)
            .args(extra);
        c.output().unwrap()
    }
}

/// The lines of `out` that start with `level: ` (the wiring findings of that level).
fn lines<'a>(out: &'a str, level: &str) -> Vec<&'a str> {
    let p = format!("{level}: ");
    out.lines().filter(|l| l.starts_with(&p)).collect()
}

/// Exactly one `level` finding about `file` contains `want`.
fn finding(out: &str, level: &str, file: &Path, want: &str) {
    let p = format!("{level}: {}: ", file.display());
    let hits: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with(&p) && l.contains(want))
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "want one {level} on {} with {want:?} in:\n{out}",
        file.display()
    );
}

fn show(o: &Output) -> String {
    format!("exit {}\n{}{}", code(o), stdout(o), stderr(o))
}

#[test]
fn correct_wiring_passes() {
    let n = Node::new("wiring-ok");
    n.resource("nfs1");
    let o = n.check(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(
        out.contains("gen/app wiring (1 resource using lkhelpers):\n"),
        "{out}"
    );
    assert!(
        out.contains("resource nfs1: lkh-nas scripts restore, remove, quickCheck, recover are wired right and its configuration validates"),
        "{out}"
    );
    assert!(
        lines(&out, "error").is_empty() && lines(&out, "warning").is_empty(),
        "{out}"
    );
    assert!(out.ends_with("result: consistent\n"), "{out}");
}

#[test]
fn no_genapp_resource_using_lkhelpers_is_one_line_and_other_scripts_are_ignored() {
    let n = Node::new("wiring-none");
    // another application's gen/app resource: a shell script, skipped silently
    write_exec(
        &n.copy(Action::Restore, "db"),
        b"#!/bin/sh\nexec /opt/db/start\n",
    );
    let o = n.check(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(
        lines(&out, "info"),
        [format!(
            "info: {}/subsys/gen/resources/app: no gen/app resource uses lkhelpers on this node",
            n.lkroot.display()
        )],
        "{out}"
    );
    assert!(!out.contains("/db"), "{out}");
    // and the existing fixtures without any gen/app tree say the same
    assert!(out.ends_with("result: consistent\n"), "{out}");
}

#[test]
fn stale_wrapper_whose_binary_is_gone_is_an_error() {
    let n = Node::new("wiring-stale");
    n.resource("nfs1");
    let gone = n.dir.path().join("usr/local/sbin/lkh-nas");
    n.wrap(Action::QuickCheck, "nfs1", Action::QuickCheck, &gone);
    let o = n.check(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{}", show(&o));
    finding(
        &out,
        "error",
        &n.copy(Action::QuickCheck, "nfs1"),
        &format!("execs {}, which does not exist", gone.display()),
    );
    assert!(out.contains("install lkh-nas at"), "{out}");
    assert_eq!(lines(&out, "error").len(), 1, "{out}");
    assert!(out.ends_with("result: inconsistent\n"), "{out}");
    assert!(
        stderr(&o).contains("lkh-platform: warning: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn wrapper_in_the_wrong_action_directory_names_the_field() {
    let n = Node::new("wiring-swapped");
    n.resource("nfs1");
    // the admin swapped Restore and Remove in the wizard
    n.wrap(Action::Restore, "nfs1", Action::Remove, &n.nas);
    n.wrap(Action::Remove, "nfs1", Action::Restore, &n.nas);
    let o = n.check(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{}", show(&o));
    finding(
        &out,
        "error",
        &n.copy(Action::Restore, "nfs1"),
        "is the remove wrapper, but LifeKeeper runs it to restore: the wizard's Restore Script field got the wrong file",
    );
    finding(
        &out,
        "error",
        &n.copy(Action::Remove, "nfs1"),
        "is the restore wrapper, but LifeKeeper runs it to remove: the wizard's Remove Script field got the wrong file",
    );
    assert!(
        out.contains("re-create the resource with the restore wrapper `lkh-nas genapp` writes (by default /usr/lib/lkhelpers/genapp/nas/restore) in the Restore Script field"),
        "{out}"
    );
}

#[test]
fn missing_configuration_reports_validates_reason() {
    let n = Node::new("wiring-noconf");
    n.resource("nfs1");
    let conf = n.conf.join("nfs1.conf");
    fs::remove_file(&conf).unwrap();
    let o = n.check(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{}", show(&o));
    finding(
        &out,
        "error",
        &conf,
        &format!(
            "the configuration of resource nfs1 is missing or invalid: lkh-nas: error: validate: {}: not found: create it",
            conf.display()
        ),
    );
    assert!(
        out.contains("then check it with `lkh-nas validate -t nfs1`"),
        "{out}"
    );
}

#[test]
fn timeout_not_below_lkcheckinterval_is_an_error() {
    let n = Node::new("wiring-interval");
    n.resource("nfs1");
    let mut d = fs::read_to_string(&n.defaults).unwrap();
    d += "LKCHECKINTERVAL=20\n";
    fs::write(&n.defaults, d).unwrap();
    let o = n.check(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{}", show(&o));
    finding(
        &out,
        "error",
        &n.conf.join("nfs1.conf"),
        &format!(
            "resource nfs1: TIMEOUT=20 is not below LKCHECKINTERVAL=20 ({}:10)",
            n.defaults.display()
        ),
    );
    assert!(out.contains("lower TIMEOUT in "), "{out}");
    // below it: fine
    n.conf("nfs1", "TIMEOUT=19\n");
    assert_eq!(code(&n.check(&[])), 0);
}

#[test]
fn missing_remove_quickcheck_and_recover_have_their_levels() {
    let n = Node::new("wiring-partial");
    n.resource("nfs1");
    for a in [Action::Remove, Action::QuickCheck, Action::Recover] {
        fs::remove_file(n.copy(a, "nfs1")).unwrap();
    }
    let o = n.check(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{}", show(&o));
    finding(
        &out,
        "error",
        &n.copy(Action::Remove, "nfs1"),
        "has no remove script",
    );
    finding(
        &out,
        "warning",
        &n.copy(Action::QuickCheck, "nfs1"),
        "LifeKeeper will assume the resource is always healthy: failures are never detected; re-create the resource with the quickCheck wrapper",
    );
    finding(
        &out,
        "info",
        &n.copy(Action::Recover, "nfs1"),
        "fails the resource over at once",
    );

    // restore and remove only: warnings and info do not fail the check
    n.wrap(Action::Remove, "nfs1", Action::Remove, &n.nas);
    let o = n.check(&[]);
    assert_eq!(code(&o), 0, "{}", show(&o));
}

#[test]
fn hand_edited_wrapper_and_old_layout_are_warnings() {
    let n = Node::new("wiring-edited");
    n.resource("nfs1");
    let p = n.copy(Action::Recover, "nfs1");
    // what runs is the same (an extra comment, the binary unquoted): a warning only
    let text = fs::read_to_string(&p)
        .unwrap()
        .replace("exec '", "# edited\nexec ")
        .replace("' recover", " recover");
    write_exec(&p, text.as_bytes());
    let old = n.lkroot.join("subsys/lkhelpers/Resources/nas/actions");
    fs::create_dir_all(&old).unwrap();
    let o = n.check(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{}", show(&o));
    finding(
        &out,
        "warning",
        &p,
        "differs from the wrapper genapp writes",
    );
    finding(
        &out,
        "warning",
        &n.lkroot.join("subsys/lkhelpers"),
        "left over from an earlier lkhelpers version",
    );
    assert!(out.contains("rm -r "), "{out}");
}

#[test]
fn insecure_binary_is_not_run() {
    let n = Node::new("wiring-insecure");
    n.resource("nfs1");
    // a world-writable binary that would leave a trace if it ran
    let evil = n.dir.path().join("tmp/lkh-nas");
    let trace = n.dir.path().join("ran");
    write_exec(
        &evil,
        format!("#!/bin/sh\ntouch {}\n", trace.display()).as_bytes(),
    );
    fs::set_permissions(&evil, fs::Permissions::from_mode(0o777)).unwrap();
    n.wrap(Action::Restore, "nfs1", Action::Restore, &evil);
    let o = n.check(&[]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    finding(
        &stdout(&o),
        "error",
        &n.copy(Action::Restore, "nfs1"),
        "writable by group or others (mode 0777); not run",
    );
    assert!(!trace.exists(), "the insecure binary was run");
}

#[test]
fn a_wrapper_naming_another_kits_binary_is_an_error() {
    let n = Node::new("wiring-kit");
    n.resource("nfs1");
    let ip = n.dir.path().join("usr/sbin/lkh-ip");
    write_exec(&ip, fake_kit("ip").as_bytes());
    n.wrap(Action::Remove, "nfs1", Action::Remove, &ip);
    let o = n.check(&[]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    // the kit is what the line runs (lkh-ip), whatever the marker says (nas)
    let out = stdout(&o);
    finding(
        &out,
        "error",
        &n.copy(Action::Restore, "nfs1"),
        "the scripts of resource nfs1 belong to different kits (lkh-nas in !restore, lkh-ip in !remove, lkh-nas in !quickCheck, lkh-nas in !recover)",
    );
    finding(
        &out,
        "warning",
        &n.copy(Action::Remove, "nfs1"),
        &format!(
            "its marker comment says kit=nas action=remove binary={}, but line 3 runs lkh-ip remove from",
            ip.display()
        ),
    );
}

#[test]
fn a_copy_of_an_lkhelpers_binary_is_recognised_without_running_its_action() {
    let n = Node::new("wiring-copy");
    n.resource("nfs1");
    // lkh-platform is an lkhelpers ELF binary; as !restore/nfs1 it must only be asked --version
    let p = n.copy(Action::Restore, "nfs1");
    write_exec(&p, &fs::read(common::BIN).unwrap());
    let o = n.check(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{}", show(&o));
    finding(
        &out,
        "error",
        &p,
        "is a copy of lkh-platform (lkh-platform ",
    );
    finding(&out, "error", &p, "which has no LifeKeeper actions");
}

/// A 170-byte static x86-64 ELF program that prints `lkh-nas 0.1.0` and exits 0, whatever
/// its arguments, and carries the string every lkhelpers binary has.
#[cfg(target_arch = "x86_64")]
fn tiny_lkh_nas_elf() -> Vec<u8> {
    tiny_elf(None)
}

/// [`tiny_lkh_nas_elf`], which with `rename` first renames one path over the other (a file
/// swapped in after the program was judged).
#[cfg(target_arch = "x86_64")]
fn tiny_elf(rename: Option<(&Path, &Path)>) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let msg = b"lkh-nas 0.1.0\n";
    let mut code: Vec<u8> = Vec::new();
    // rename(from, to): the two leas' displacements are set once the strings are placed
    let leas = rename.map(|_| {
        code.extend([0xb8, 82, 0, 0, 0]); // eax = SYS_rename
        code.extend([0x48, 0x8d, 0x3d, 0, 0, 0, 0]); // lea rdi, [rip+from]
        let from = code.len();
        code.extend([0x48, 0x8d, 0x35, 0, 0, 0, 0]); // lea rsi, [rip+to]
        let to = code.len();
        code.extend([0x0f, 0x05]); // syscall
        (from, to)
    });
    code.extend([0xb8, 1, 0, 0, 0, 0xbf, 1, 0, 0, 0]); // write(1,
    code.extend([0x48, 0x8d, 0x35, 16, 0, 0, 0]); // lea rsi, [rip+16] (msg)
    code.extend([0xba, msg.len() as u8, 0, 0, 0, 0x0f, 0x05]); // len); syscall
    code.extend([0xb8, 60, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05]); // exit(0)
    code.extend_from_slice(msg);
    code.extend_from_slice(lkh_platform::wiring::BINARY_MARKER);
    if let (Some((from_end, to_end)), Some((from, to))) = (leas, rename) {
        for (end, path) in [(from_end, from), (to_end, to)] {
            let at = code.len();
            code.extend_from_slice(path.as_os_str().as_bytes());
            code.push(0);
            let disp = i32::try_from(at - end).unwrap().to_le_bytes();
            code[end - 4..end].copy_from_slice(&disp);
        }
    }
    let base: u64 = 0x400000;
    let total = (64 + 56 + code.len()) as u64;
    let mut e: Vec<u8> = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    e.extend(2u16.to_le_bytes()); // ET_EXEC
    e.extend(0x3eu16.to_le_bytes()); // x86-64
    e.extend(1u32.to_le_bytes());
    e.extend((base + 120).to_le_bytes()); // entry
    e.extend(64u64.to_le_bytes()); // phoff
    e.extend(0u64.to_le_bytes()); // shoff
    e.extend(0u32.to_le_bytes());
    for h in [64u16, 56, 1, 0, 0, 0] {
        e.extend(h.to_le_bytes());
    }
    e.extend(1u32.to_le_bytes()); // PT_LOAD
    e.extend(5u32.to_le_bytes()); // R+X
    for v in [0, base, base, total, total, 0x1000] {
        e.extend(v.to_le_bytes());
    }
    e.extend(code);
    e
}

#[cfg(target_arch = "x86_64")]
#[test]
fn a_copy_of_a_kit_binary_works_but_goes_stale() {
    let n = Node::new("wiring-elf");
    n.resource("nfs1");
    let p = n.copy(Action::Restore, "nfs1");
    write_exec(&p, &tiny_lkh_nas_elf());
    let o = n.check(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{}", show(&o));
    finding(
        &out,
        "warning",
        &p,
        "is a copy of the lkh-nas binary (lkh-nas 0.1.0): it works (the action comes from the !restore directory) but goes stale when lkh-nas is upgraded",
    );
    assert!(
        out.contains("re-create the resource with its wrappers"),
        "{out}"
    );

    // an ELF program without lkhelpers' string is another application's: never run (it would
    // answer like a copy), reported only inside a resource whose other scripts are ours
    let mut other = tiny_lkh_nas_elf();
    let len = other.len() - lkh_platform::wiring::BINARY_MARKER.len();
    other.truncate(len);
    write_exec(&p, &other);
    let db = n.copy(Action::Restore, "db");
    write_exec(&db, &other);
    let out = stdout(&n.check(&[]));
    finding(
        &out,
        "warning",
        &p,
        "an ELF program that is not an lkhelpers binary, while this resource's other scripts are lkhelpers'",
    );
    assert!(!out.contains("is a copy of"), "{out}");
    assert!(!out.contains(&format!("{}:", db.display())), "{out}");
}

#[test]
fn json_gives_every_finding_as_an_array() {
    let n = Node::new("wiring-json");
    n.resource("nfs1");
    fs::remove_file(n.copy(Action::QuickCheck, "nfs1")).unwrap();
    let o = n.check(&["--json"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(
        out.starts_with("[{\"check\":\"platform/serv_env\",\"level\":\"ok\""),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    let qc = n.copy(Action::QuickCheck, "nfs1");
    assert!(
        out.contains(&format!(
            "{{\"check\":\"wiring\",\"level\":\"warning\",\"tag\":\"nfs1\",\"file\":\"{}\",\"what\":\"is missing: LifeKeeper will assume",
            qc.display()
        )),
        "{out}"
    );
    assert!(out.trim_end().ends_with("}]"), "{out}");
}

#[test]
fn help_documents_the_wiring_checks() {
    let o = bin().args(["check-lifekeeper", "--help"]).output().unwrap();
    let out = stdout(&o);
    assert_eq!(code(&o), 0);
    for want in [
        "gen/app wiring",
        "LKCHECKINTERVAL",
        "validate -t TAG",
        "--json",
        "lkhelpers-check",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
}

#[test]
fn a_symbolic_link_instead_of_a_copy_is_a_warning() {
    let n = Node::new("wiring-link");
    n.resource("nfs1");
    let p = n.copy(Action::Recover, "nfs1");
    let real = n.dir.path().join("usr/lib/lkhelpers/genapp/nas/recover");
    fs::create_dir_all(real.parent().unwrap()).unwrap();
    fs::rename(&p, &real).unwrap();
    std::os::unix::fs::symlink(&real, &p).unwrap();
    // and a link to something that is not a file, in another tag: skipped, never read
    std::os::unix::fs::symlink("/dev/zero", n.copy(Action::Restore, "zero")).unwrap();
    let o = n.check(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{}", show(&o));
    finding(
        &out,
        "warning",
        &p,
        &format!(
            "is a symbolic link (to {}), but gen/app keeps copies",
            real.display()
        ),
    );
    assert!(!out.contains("zero"), "{out}");
}

#[test]
fn a_validate_that_hangs_is_killed_and_reported() {
    let n = Node::new("wiring-hang");
    n.resource("nfs1");
    let pidfile = n.dir.path().join("pid");
    let script = fake_kit("nas").replace(
        "validate)\n",
        &format!(
            "validate)\n    echo $$ > {}; exec sleep 60\n",
            pidfile.display()
        ),
    );
    write_exec(&n.nas, script.as_bytes());
    let o = n.check(&[]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    finding(
        &stdout(&o),
        "error",
        &n.conf.join("nfs1.conf"),
        "`lkh-nas validate -t nfs1` did not answer within 5 s",
    );
    let pid = fs::read_to_string(&pidfile).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the hung validate (pid {pid}) is still there"
    );
}

/// The tests that make files another user owns need root (CI runs as root).
fn need_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test must run as root: it makes files owned by uid 65534"
    );
}

fn chown_nobody(p: &Path) {
    std::os::unix::fs::lchown(p, Some(65534), None).unwrap();
}

/// A script that leaves `trace` behind whenever it runs (and carries no lkhelpers marker).
fn tracer(path: &Path, trace: &Path) {
    write_exec(
        path,
        format!("#!/bin/sh\ntouch {}\necho TIMEOUT=1\n", trace.display()).as_bytes(),
    );
}

/// A wrapper's kit, action and binary are what its executable line runs, read as /bin/sh
/// reads it: the marker comment runs nothing.
#[test]
fn what_the_exec_line_runs_is_judged_not_the_marker_comment() {
    let n = Node::new("wiring-exec-line");
    n.resource("nfs1");
    let p = n.copy(Action::Restore, "nfs1");
    let good = fs::read_to_string(&p).unwrap();
    let marker = good.lines().nth(1).unwrap().to_owned();
    let put = |body: &str| write_exec(&p, format!("#!/bin/sh\n{marker}\n{body}\n").as_bytes());
    let nas = n.nas.display().to_string();
    let cases = [
        (
            "exec /bin/true \"$@\"".to_owned(),
            "line 3: `exec /bin/true \"$@\"`: has 1 word between exec and \"$@\" where genapp writes two",
        ),
        (
            format!("set -x; exec {nas} restore \"$@\""),
            "runs a second command",
        ),
        (
            format!("PATH=/tmp exec {nas} restore \"$@\""),
            "sets a variable before the command",
        ),
        (
            format!("exec {nas} restore \"$@\" >/dev/null"),
            "redirects input or output",
        ),
        (format!("exec {nas} restore"), "does not end with \"$@\""),
        (
            format!("exec {nas} restore \"$@\"\nexec /bin/true"),
            "line 4: `exec /bin/true`: a second command (line 3 already execs",
        ),
    ];
    for (body, want) in cases {
        put(&body);
        let o = n.check(&[]);
        assert_eq!(code(&o), 1, "{body}: {}", show(&o));
        finding(&stdout(&o), "error", &p, want);
        assert!(!stdout(&o).contains("wired right"), "{}", show(&o));
    }

    // the line runs remove in !restore, whatever the marker says
    put(&format!("exec {nas} remove \"$@\""));
    let o = n.check(&[]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    finding(
        &stdout(&o),
        "error",
        &p,
        "is the remove wrapper, but LifeKeeper runs it to restore: the wizard's Restore Script field got the wrong file (line 3 passes remove)",
    );

    // a program that is not lkhelpers' is named and never run
    let other = n.dir.path().join("usr/sbin/other");
    let trace = n.dir.path().join("ran");
    tracer(&other, &trace);
    put(&format!("exec {} restore \"$@\"", other.display()));
    let o = n.check(&[]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    finding(
        &stdout(&o),
        "error",
        &p,
        &format!(
            "line 3 execs {}, which is not an lkhelpers binary (it lacks the string every lkhelpers binary carries); not run",
            other.display()
        ),
    );
    assert!(!trace.exists(), "a program that is not lkhelpers' was run");

    // without the marker, a script that execs an lkhelpers kit is still ours, and judged
    write_exec(
        &p,
        format!("#!/bin/sh\nexec \"{nas}\" restore \"$@\"\n").as_bytes(),
    );
    let o = n.check(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{}", show(&o));
    finding(
        &out,
        "warning",
        &p,
        "differs from the wrapper genapp writes",
    );
    write_exec(
        &p,
        format!("#!/bin/sh\nexec \"{nas}\" remove \"$@\"\n").as_bytes(),
    );
    let o = n.check(&[]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    finding(
        &stdout(&o),
        "error",
        &p,
        "is the remove wrapper, but LifeKeeper runs it to restore",
    );
}

/// `$LKROOT` and every directory on the way to what LifeKeeper runs: a component another user
/// could change is one error naming it (once, however many files are below it).
#[test]
fn a_directory_others_can_change_above_the_copies_is_an_error_naming_it() {
    need_root();
    let n = Node::new("wiring-open-root");
    n.resource("nfs1");
    n.resource("nfs2");
    let lkroot = &n.lkroot;
    fs::set_permissions(lkroot, fs::Permissions::from_mode(0o777)).unwrap();
    let o = n.check(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{}", show(&o));
    finding(
        &out,
        "error",
        lkroot,
        &format!(
            "writable by group or others (mode 0777), so someone other than root can change what LifeKeeper runs as root below it; chmod 0755 {}",
            lkroot.display()
        ),
    );
    assert_eq!(lines(&out, "error").len(), 1, "{out}");
    assert!(!out.contains("wired right"), "{out}");
    assert!(out.ends_with("result: inconsistent\n"), "{out}");
    // with no resource at all, an open $LKROOT is still an error
    let empty = Node::new("wiring-open-empty");
    fs::set_permissions(&empty.lkroot, fs::Permissions::from_mode(0o1777)).unwrap();
    let o = empty.check(&[]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    finding(
        &stdout(&o),
        "error",
        &empty.lkroot,
        "writable by others (mode 1777): the sticky bit does not stop them",
    );
    fs::set_permissions(lkroot, fs::Permissions::from_mode(0o755)).unwrap();

    let restore_dir = n.copy(Action::Restore, "nfs1");
    let restore_dir = restore_dir.parent().unwrap();
    fs::set_permissions(restore_dir, fs::Permissions::from_mode(0o777)).unwrap();
    let o = n.check(&[]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    finding(
        &stdout(&o),
        "error",
        restore_dir,
        "writable by group or others (mode 0777)",
    );
    fs::set_permissions(restore_dir, fs::Permissions::from_mode(0o755)).unwrap();

    let app = n.lkroot.join("subsys/gen/resources/app");
    chown_nobody(&app);
    let o = n.check(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{}", show(&o));
    finding(
        &out,
        "error",
        &app,
        &format!(
            "owned by uid 65534, not root, so someone other than root can change what LifeKeeper runs as root below it; chown root: {}",
            app.display()
        ),
    );
    assert_eq!(lines(&out, "error").len(), 1, "{out}");
    std::os::unix::fs::lchown(&app, Some(0), None).unwrap();

    // the copy itself
    let qc = n.copy(Action::QuickCheck, "nfs2");
    chown_nobody(&qc);
    let o = n.check(&[]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    finding(
        &stdout(&o),
        "error",
        &qc,
        "LifeKeeper runs this file as root, and it is owned by uid 65534, not root",
    );
    std::os::unix::fs::lchown(&qc, Some(0), None).unwrap();
    assert_eq!(code(&n.check(&[])), 0);
}

/// The binary a wrapper execs is judged with its whole chain: root's links (a usrmerge
/// `/sbin -> usr/sbin`) are fine, a directory or link another user owns is an error naming
/// it, and such a binary is never run.
#[test]
fn the_binary_a_wrapper_execs_is_judged_with_every_directory_on_its_way() {
    need_root();
    let n = Node::new("wiring-bin-chain");
    // reached through a root-owned link, as /sbin/lkh-nas is on a usrmerge system
    let sbin = n.dir.path().join("sbin");
    std::os::unix::fs::symlink("usr/sbin", &sbin).unwrap();
    for a in Action::ALL {
        n.wrap(a, "nfs1", a, &sbin.join("lkh-nas"));
    }
    n.conf("nfs1", "TIMEOUT=20\n");
    let o = n.check(&[]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(
        stdout(&o).contains("resource nfs1: lkh-nas scripts"),
        "{}",
        show(&o)
    );

    // the same link owned by another user
    chown_nobody(&sbin);
    let o = n.check(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{}", show(&o));
    finding(
        &out,
        "error",
        &sbin,
        &format!(
            "a symbolic link owned by uid 65534, not root, so someone other than root can replace {}",
            sbin.join("lkh-nas").display()
        ),
    );
    assert!(
        out.contains(&format!("chown -h root: {}", sbin.display())),
        "{out}"
    );
    std::os::unix::fs::lchown(&sbin, Some(0), None).unwrap();

    // a root-owned binary in a directory another user owns: that user can swap it
    let bob = n.dir.path().join("home/bob");
    let bin = bob.join("bin/lkh-nas");
    let trace = n.dir.path().join("ran");
    write_exec(
        &bin,
        fake_kit("nas")
            .replace(
                "case \"$1\"",
                &format!("touch {}\ncase \"$1\"", trace.display()),
            )
            .as_bytes(),
    );
    chown_nobody(&bob);
    n.resource("nfs1");
    for a in Action::ALL {
        n.wrap(a, "nfs1", a, &bin);
    }
    let o = n.check(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{}", show(&o));
    finding(
        &out,
        "error",
        &bob,
        &format!(
            "owned by uid 65534, not root, so someone other than root can replace {}, which {} execs as root; chown root: {}",
            bin.display(),
            n.copy(Action::Restore, "nfs1").display(),
            bob.display()
        ),
    );
    assert_eq!(
        lines(&out, "error").len(),
        1,
        "one error for the directory: {out}"
    );
    assert!(!out.contains("wired right"), "{out}");
    assert!(!trace.exists(), "a binary another user can replace was run");
}

/// What runs `--version` and `validate` is the file that was judged: swapping the path
/// afterwards changes nothing (the descriptor is run, not the path).
#[test]
fn the_binary_that_was_judged_is_the_one_that_runs() {
    let n = Node::new("wiring-swap");
    n.resource("nfs1");
    let evil = n.dir.path().join("usr/sbin/evil");
    let trace = n.dir.path().join("evil-ran");
    tracer(&evil, &trace);
    // once judged and asked --version, the "kit" swaps another program into its own path
    let kit = fake_kit("nas").replace(
        "--version) echo",
        &format!(
            "--version) mv -f {} {}; echo",
            evil.display(),
            n.nas.display()
        ),
    );
    write_exec(&n.nas, kit.as_bytes());
    let o = n.check(&[]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(
        stdout(&o).contains("resource nfs1: lkh-nas scripts restore, remove, quickCheck, recover are wired right and its configuration validates"),
        "{}",
        show(&o)
    );
    assert!(!evil.exists(), "the swap happened");
    assert!(
        !trace.exists(),
        "the program swapped in after the judgement was run"
    );
}

/// The same for a copy of a kit binary: `--version` and `validate` run the copy that was
/// judged, even when another file takes its path in between.
#[cfg(target_arch = "x86_64")]
#[test]
fn the_copy_that_was_judged_is_the_one_that_runs() {
    let n = Node::new("wiring-copy-swap");
    n.resource("nfs1");
    let p = n.copy(Action::Restore, "nfs1");
    let evil = n.dir.path().join("usr/sbin/evil");
    let trace = n.dir.path().join("evil-ran");
    tracer(&evil, &trace);
    write_exec(&p, &tiny_elf(Some((&evil, &p))));
    let o = n.check(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{}", show(&o));
    finding(
        &out,
        "warning",
        &p,
        "is a copy of the lkh-nas binary (lkh-nas 0.1.0)",
    );
    finding(
        &out,
        "info",
        &n.conf.join("nfs1.conf"),
        "`lkh-nas validate -t nfs1` printed no TIMEOUT=",
    );
    assert!(!evil.exists(), "the swap happened");
    assert!(
        !trace.exists(),
        "the program swapped in after the judgement was run"
    );
}

/// Not a test on its own: with `LKH_TEST_HOLD_DAEMON` set to a run directory it holds
/// lkh-scsipr's defender lock there (as `lkh-scsipr watch` does) until stdin closes. The test
/// below runs it as a child process: a lock must be held by another process to be seen.
#[test]
fn hold_scsipr_defender_lock_when_asked() {
    let Ok(dir) = std::env::var("LKH_TEST_HOLD_DAEMON") else {
        return;
    };
    let run = lkh_common::runstate::RunDir::at(&dir, "scsipr");
    let d = run.hold_daemon("watch").unwrap();
    d.beat();
    println!("holding");
    let mut s = String::new();
    let _ = std::io::stdin().read_line(&mut s);
}

/// lkh-scsipr resources wired on a node: check-lifekeeper warns when no defender
/// (`lkh-scsipr watch`) runs there, and says it runs when it does.
#[test]
fn an_scsipr_resource_without_a_running_defender_is_a_warning() {
    let n = Node::new("wiring-defender");
    let scsipr = n.dir.path().join("usr/sbin/lkh-scsipr");
    write_exec(&scsipr, fake_kit("scsipr").as_bytes());
    for a in Action::ALL {
        let w = Wrapper {
            kit: "scsipr".into(),
            action: a,
            binary: scsipr.clone(),
        };
        write_exec(&n.copy(a, "disk1"), w.render().as_bytes());
    }
    n.conf("disk1", "DEVICE=/dev/sdb\n");
    let run = n.dir.path().join("run");
    fs::create_dir_all(&run).unwrap();
    fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
    let check = || {
        let mut c = bin();
        c.env("LKHELPERS_CONF_DIR", &n.conf)
            .env("LKHELPERS_RUN_DIR", &run)
            .args(["check-lifekeeper", "--no-network", "--sysroot"])
            .arg(fixture("hyperv-gen2"))
            .arg("--defaults")
            .arg(&n.defaults)
            .arg("--lkroot")
            .arg(&n.lkroot);
        c.output().unwrap()
    };
    let o = check();
    let out = stdout(&o);
    let pid_file = run.join("scsipr/watch.pid");
    finding(
        &out,
        "warning",
        &pid_file,
        "no lkh-scsipr watch runs on this node",
    );
    assert!(
        out.contains("systemctl enable --now lkh-scsipr-watch"),
        "{out}"
    );
    // a defender holds the lock: no warning, an ok line naming it
    let mut holder = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hold_scsipr_defender_lock_when_asked",
            "--nocapture",
        ])
        .env("LKH_TEST_HOLD_DAEMON", &run)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut r = std::io::BufReader::new(holder.stdout.take().unwrap());
    while !line.contains("holding") {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut r, &mut line).unwrap() > 0);
    }
    let o = check();
    drop(holder.stdin.take());
    let _ = holder.wait();
    let out = stdout(&o);
    finding(&out, "ok", &pid_file, "runs and defends the disks of disk1");
    assert!(!out.contains("no lkh-scsipr watch runs"), "{out}");
}
