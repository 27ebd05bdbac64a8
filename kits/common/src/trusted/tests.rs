use super::*;
use crate::exit::Exit;
use std::os::unix::fs::PermissionsExt;

struct Tmp(PathBuf);
impl Tmp {
    fn new(name: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!("lkh-trusted-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        Tmp(d)
    }
}
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn reads_checked_files_and_refuses_links_writable_and_foreign_ones() {
    let t = Tmp::new("read");
    let f = t.0.join("a.conf");
    std::fs::write(&f, b"X=1\n").unwrap();
    chmod(&f, 0o644);
    assert_eq!(read_file(&f).unwrap().as_deref(), Some(&b"X=1\n"[..]));
    assert_eq!(read_file(&t.0.join("missing")).unwrap(), None);
    assert_eq!(read_file(&t.0.join("no/such/dir/x")).unwrap(), None);

    let link = t.0.join("link.conf");
    std::os::unix::fs::symlink(&f, &link).unwrap();
    let e = read_file(&link).unwrap_err();
    assert_eq!(e.exit, Exit::Usage);
    assert!(e.message.contains("symbolic link"), "{e}");

    chmod(&f, 0o664);
    let e = read_file(&f).unwrap_err();
    assert!(e.message.contains("chmod go-w"), "{e}");
    chmod(&f, 0o644);

    for mode in [0o777, 0o1777, 0o775] {
        chmod(&t.0, mode);
        let e = read_file(&f).unwrap_err();
        assert_eq!(e.exit, Exit::Usage, "{mode:o}");
        assert!(e.message.contains("writable by group or others"), "{e}");
        assert!(
            e.message.contains(&format!("chmod {:04o} ", mode & 0o755)),
            "{e}"
        );
    }
    chmod(&t.0, 0o755);

    // a link among the directories above is refused too
    let dlink = t.0.join("dlink");
    std::os::unix::fs::symlink(&t.0, &dlink).unwrap();
    let e = read_file(&dlink.join("a.conf")).unwrap_err();
    assert!(e.message.contains("symbolic link"), "{e}");

    std::fs::create_dir(t.0.join("d.conf")).unwrap();
    let e = read_file(&t.0.join("d.conf")).unwrap_err();
    assert!(e.message.contains("not a regular file"), "{e}");

    let fifo = t.0.join("fifo");
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
    let e = read_file(&fifo).unwrap_err();
    assert!(e.message.contains("not a regular file"), "{e}");

    if nix::unistd::geteuid().is_root() {
        nix::unistd::chown(&f, Some(nix::unistd::Uid::from_raw(4321)), None).unwrap();
        let e = read_file(&f).unwrap_err();
        assert!(e.message.contains("owned by uid 4321"), "{e}");
        nix::unistd::chown(&f, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
        nix::unistd::chown(&t.0, Some(nix::unistd::Uid::from_raw(4321)), None).unwrap();
        let e = read_file(&f).unwrap_err();
        assert!(e.message.contains("owned by uid 4321"), "{e}");
    }
}

#[test]
fn creates_directories_with_exact_modes_and_writes_atomically() {
    let t = Tmp::new("write");
    let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o077));
    let d = Dir::open(&t.0.join("a/b"), Some(0o700)).unwrap().unwrap();
    nix::sys::stat::umask(old);
    for p in [t.0.join("a"), t.0.join("a/b")] {
        let m = std::fs::symlink_metadata(&p).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o700, "{}", p.display());
    }
    d.write_atomic(OsStr::new("v"), b"one", 0o600).unwrap();
    d.write_atomic(OsStr::new("v"), b"two", 0o600).unwrap();
    assert_eq!(d.read(OsStr::new("v")).unwrap().unwrap(), b"two");
    let m = std::fs::symlink_metadata(t.0.join("a/b/v")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o600);
    assert_eq!(
        d.entries().unwrap(),
        [OsString::from("v")],
        "no temporary left"
    );

    // a link planted in a file's place is replaced, never written through
    let victim = t.0.join("victim");
    std::fs::write(&victim, b"keep").unwrap();
    std::os::unix::fs::symlink(&victim, t.0.join("a/b/w")).unwrap();
    d.write_atomic(OsStr::new("w"), b"new", 0o600).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    assert!(
        std::fs::symlink_metadata(t.0.join("a/b/w"))
            .unwrap()
            .is_file()
    );

    assert!(d.create_new(OsStr::new("k"), b"first", 0o600).unwrap());
    assert!(!d.create_new(OsStr::new("k"), b"second", 0o600).unwrap());
    assert_eq!(d.read(OsStr::new("k")).unwrap().unwrap(), b"first");
    assert!(d.remove(OsStr::new("k")).unwrap());
    assert!(!d.remove(OsStr::new("k")).unwrap());

    // a pre-created group-writable directory is refused, not used
    std::fs::create_dir(t.0.join("a/open")).unwrap();
    chmod(&t.0.join("a/open"), 0o770);
    let e = Dir::open(&t.0.join("a/open/x"), Some(0o700)).unwrap_err();
    assert!(e.message.contains("writable by group or others"), "{e}");
    assert!(!t.0.join("a/open/x").exists());
    assert!(Dir::open(&t.0.join("a/../a"), None).is_err());
}

#[test]
fn judge_walks_the_real_chain_and_names_every_component_to_fix() {
    let t = Tmp::new("judge");
    let bin = t.0.join("sbin/tool");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    chmod(&t.0.join("sbin"), 0o755);
    std::fs::write(&bin, b"#!/bin/sh\n").unwrap();
    chmod(&bin, 0o755);
    let j = judge(&bin, Want::File).unwrap();
    assert_eq!(
        (j.flaws.as_slice(), j.real.as_path()),
        (&[][..], bin.as_path())
    );
    assert!(j.meta.is_file());

    // root's links are followed as the kernel follows them: absolute, relative, with `..`
    std::os::unix::fs::symlink(t.0.join("sbin"), t.0.join("bin")).unwrap();
    std::fs::create_dir(t.0.join("lib")).unwrap();
    chmod(&t.0.join("lib"), 0o755);
    std::os::unix::fs::symlink("../sbin/tool", t.0.join("lib/tool")).unwrap();
    for p in [
        t.0.join("bin/tool"),
        t.0.join("lib/tool"),
        t.0.join("lib/../bin/./tool"),
    ] {
        let j = judge(&p, Want::File).unwrap();
        assert_eq!(j.real, bin, "{}", p.display());
        assert!(j.flaws.is_empty(), "{}: {:?}", p.display(), j.flaws);
        assert!(!j.links.is_empty());
    }
    let d = judge(&t.0.join("bin"), Want::Dir).unwrap();
    assert_eq!(d.real, t.0.join("sbin"));
    assert!(judge(&t.0.join("bin"), Want::File).is_err());
    assert!(judge(&bin, Want::Dir).is_err());

    // every flaw on the way is named, the walk goes on past it
    chmod(&t.0.join("sbin"), 0o777);
    chmod(&bin, 0o775);
    let j = judge(&t.0.join("lib/tool"), Want::File).unwrap();
    let got: Vec<(PathBuf, &str, bool)> = j
        .flaws
        .iter()
        .map(|f| (f.path.clone(), f.fix.as_str(), f.target))
        .collect();
    let sbin_fix = format!("chmod 0755 {}", t.0.join("sbin").display());
    let bin_fix = format!("chmod go-w {}", bin.display());
    assert_eq!(
        got,
        [
            (t.0.join("sbin"), sbin_fix.as_str(), false),
            (bin.clone(), bin_fix.as_str(), true)
        ]
    );
    assert!(
        j.flaws[0]
            .what
            .contains("writable by group or others (mode 0777)")
    );
    chmod(&bin, 0o755);

    // a root-owned sticky directory passes on the way, never as the one holding the target
    chmod(&t.0.join("sbin"), 0o1777);
    let j = judge(&bin, Want::File).unwrap();
    assert_eq!(j.flaws.len(), 1, "{:?}", j.flaws);
    assert!(
        j.flaws[0].what.contains("sticky bit does not stop"),
        "{:?}",
        j.flaws
    );
    assert_eq!(judge(&t.0.join("sbin"), Want::Dir).unwrap().flaws.len(), 1);
    std::fs::create_dir(t.0.join("sbin/deeper")).unwrap();
    chmod(&t.0.join("sbin/deeper"), 0o755);
    std::fs::write(t.0.join("sbin/deeper/x"), b"").unwrap();
    assert!(
        judge(&t.0.join("sbin/deeper/x"), Want::File)
            .unwrap()
            .flaws
            .is_empty()
    );
    chmod(&t.0.join("sbin"), 0o755);

    // where the walk cannot go on
    let u = judge(&t.0.join("sbin/missing/x"), Want::File).unwrap_err();
    assert_eq!((u.path, u.missing), (t.0.join("sbin/missing"), true));
    let u = judge(&bin.join("x"), Want::File).unwrap_err();
    assert!(u.what.contains("not a directory"), "{u:?}");
    std::os::unix::fs::symlink("loop", t.0.join("loop")).unwrap();
    let u = judge(&t.0.join("loop"), Want::File).unwrap_err();
    assert!(u.what.contains("symbolic links"), "{u:?}");
    nix::unistd::mkfifo(&t.0.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
    let u = judge(&t.0.join("fifo"), Want::File).unwrap_err();
    assert!(u.what.contains("not a regular file"), "{u:?}");

    if nix::unistd::geteuid().is_root() {
        let nobody = Some(nix::unistd::Uid::from_raw(65534));
        // a link another user owns
        let link = t.0.join("theirs");
        std::os::unix::fs::symlink(&bin, &link).unwrap();
        nix::unistd::fchownat(
            AT_FDCWD,
            &link,
            nobody,
            None,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap();
        let j = judge(&link, Want::File).unwrap();
        assert_eq!(j.flaws.len(), 1, "{:?}", j.flaws);
        assert!(j.flaws[0].what.contains("symbolic link owned by uid 65534"));
        assert_eq!(j.flaws[0].fix, format!("chown -h root: {}", link.display()));
        // a directory another user owns, and a file
        nix::unistd::chown(&t.0.join("sbin"), nobody, None).unwrap();
        nix::unistd::chown(&bin, nobody, None).unwrap();
        let j = judge(&bin, Want::File).unwrap();
        let paths: Vec<&Path> = j.flaws.iter().map(|f| f.path.as_path()).collect();
        assert_eq!(paths, [t.0.join("sbin").as_path(), bin.as_path()]);
        assert!(j.flaws[0].what.contains("owned by uid 65534, not root"));
    }
}

/// A usrmerge system's interpreter (`/bin -> usr/bin`, `/usr/bin/sh -> dash` or `bash`)
/// is judged clean: root's links in root's directories are no finding.
#[test]
fn the_systems_own_shell_has_no_flaw() {
    let j = judge(Path::new("/bin/sh"), Want::File).unwrap();
    assert!(j.flaws.is_empty(), "{:?}", j.flaws);
    assert!(j.meta.is_file());
}
