use super::*;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().unwrap();
    assert!(st.success(), "{cmd}");
}

fn mounted_at(path: &[u8]) -> bool {
    mountinfo::read_self()
        .unwrap()
        .iter()
        .any(|e| e.path.as_os_str().as_bytes() == path)
}

/// Runs itself again as root in a private mount namespace (`unshare -m`): a tmpfs tree
/// stands in for the NFS mount, with a submount at `u/efi` and one with a non-UTF-8 name.
/// After mountinfo was read, `u` is renamed and replaced by a link to a victim directory
/// that has its own `efi` mount: the stale path leads to the victim, which is refused;
/// unmount then takes the whole tree (the renamed submount included) and the victim stays.
#[test]
fn unmount_by_identity_is_not_steered_by_a_swapped_path() {
    const INNER: &str = "NAS_TEST_UNMOUNT_SWAP";
    let name = "ops::tests::unmount_by_identity_is_not_steered_by_a_swapped_path";
    if std::env::var_os(INNER).is_none() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root for a private mount namespace (the VM test covers it)");
            return;
        }
        crate::rerun_test_under(&["unshare", "-m", "--propagation", "private"], name, INNER);
        return;
    }
    let d = std::env::temp_dir().join(format!("nas-swap-{}", std::process::id()));
    let d = d.to_str().unwrap();
    sh(&format!(
        "mkdir -p {d}/tree {d}/victim && mount -t tmpfs victim {d}/victim && mkdir {d}/victim/efi && mount -t tmpfs victim-efi {d}/victim/efi && mount -t tmpfs tree {d}/tree && mkdir -p {d}/tree/u/efi {d}/tree/$(printf '\\377') && mount -t tmpfs user-efi {d}/tree/u/efi && mount -t tmpfs latin1 {d}/tree/$(printf '\\377')"
    ));
    let entries = mountinfo::read_self().unwrap();
    let efi = mountinfo::find_at(&entries, &format!("{d}/tree/u/efi"))
        .unwrap()
        .clone();
    sh(&format!(
        "mv {d}/tree/u {d}/tree/u2 && ln -s {d}/victim {d}/tree/u"
    ));
    let until = Instant::now() + Duration::from_secs(5);
    let r = child::umount_mount(&efi, 0, until).unwrap();
    assert!(
        matches!(r, ChildEnd::Done(Err(Errno::ENOTDIR | Errno::ELOOP))),
        "{r:?}"
    );
    // the same path with the link followed by hand: another mount, refused by its id
    let mut elsewhere = efi.clone();
    elsewhere.path = format!("{d}/victim/efi").into();
    let r = child::umount_mount(&elsewhere, libc::MNT_DETACH, until).unwrap();
    assert_eq!(r, ChildEnd::Done(Err(Errno::EXDEV)));
    assert!(mounted_at(format!("{d}/victim/efi").as_bytes()));
    let report = unmount(&format!("{d}/tree"), until).unwrap();
    assert!(
        report.signalled.is_empty(),
        "nothing held it: nobody signalled"
    );
    assert!(!mounted_at(format!("{d}/tree").as_bytes()));
    assert!(!mounted_at(format!("{d}/tree/u2/efi").as_bytes()));
    let mut latin1 = format!("{d}/tree/").into_bytes();
    latin1.push(0xff);
    assert!(!mounted_at(&latin1));
    assert!(
        mounted_at(format!("{d}/victim/efi").as_bytes()),
        "the victim was unmounted"
    );
    assert!(mounted_at(format!("{d}/victim").as_bytes()));
    assert!(
        report.removed.iter().all(|(_, m)| *m == Method::Normal),
        "{:?}",
        report.removed
    );
    sh(&format!("umount {d}/victim/efi {d}/victim && rm -r {d}"));
}

/// MOUNTPOINT is walked without following links: a link anywhere is refused and named,
/// whatever is missing is made on the walk (never through a link).
#[test]
fn mount_point_walk_refuses_links() {
    let d = std::env::temp_dir().join(format!("nas-mp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("real/data")).unwrap();
    std::os::unix::fs::symlink(d.join("real"), d.join("lnk")).unwrap();
    std::os::unix::fs::symlink(d.join("real/data"), d.join("last")).unwrap();
    std::fs::write(d.join("file"), "").unwrap();
    let at = |p: &str| format!("{}/{p}", d.display());
    let e = mount_point(&at("lnk/data"), false).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    let want = format!("{} is a symbolic link (to {})", at("lnk"), at("real"));
    assert!(e.msg.contains(&want), "{e}");
    // nothing is created through the link
    let e = mount_point(&at("lnk/new/x"), true).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config, "{e}");
    assert!(!d.join("real/new").exists());
    let e = mount_point(&at("last"), false).unwrap_err();
    assert!(e.msg.contains("is a symbolic link"), "{e}");
    let e = mount_point(&at("file/x"), false).unwrap_err();
    assert!(e.msg.contains("is not a directory"), "{e}");
    assert_eq!(mount_point(&at("file"), false).unwrap(), MountPoint::Other);
    assert_eq!(
        mount_point(&at("a/b/c"), false).unwrap(),
        MountPoint::Missing
    );
    assert!(matches!(
        mount_point(&at("a/b/c"), true).unwrap(),
        MountPoint::Dir { .. }
    ));
    assert!(d.join("a/b/c").is_dir());
    assert!(matches!(
        mount_point(&at("real/data"), false).unwrap(),
        MountPoint::Dir { .. }
    ));
    std::fs::remove_dir_all(&d).unwrap();
}

use std::net::IpAddr;

/// B mounted 192.0.2.1:/export (4.1); the kernel merged it onto A's connection to
/// 127.0.0.1 (as captured from kernel 6.1 against knfsd).
const MERGED: &str = "\
40 1 0:50 / /mnt/ka rw,relatime - nfs4 127.0.0.1:/export rw,vers=4.2,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=127.0.0.1,local_lock=none,addr=127.0.0.1
41 1 0:50 / /mnt/kb rw,relatime - nfs4 127.0.0.1:/export rw,vers=4.2,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=127.0.0.1,local_lock=none,addr=127.0.0.1
";

fn cfg(server: &str, mp: &str, v: crate::Version) -> NfsConfig {
    let ip: IpAddr = server.parse().unwrap();
    NfsConfig::new(ip, "/export", mp, v, None).unwrap()
}

#[test]
fn merged_mount_is_named_as_such() {
    let e = mountinfo::parse(MERGED).unwrap();
    let b = cfg("192.0.2.1", "/mnt/kb", crate::Version::V4_1);
    assert!(matches!(state(&b, &e), State::Other(_)));
    let req = b.mount_request(None);
    let (kind, msg) = describe_foreign(&b, &req, mountinfo::find_at(&e, "/mnt/kb"), &e);
    assert_eq!(kind, ErrorKind::Config);
    assert!(
            msg.contains("merged this mount onto the existing connection to the same server at 127.0.0.1, which /mnt/ka is mounted by"),
            "{msg}"
        );
    assert!(msg.contains("set SERVER=127.0.0.1"), "{msg}");
    // something else entirely, or nothing: a failure, not a configuration matter
    let other = cfg("192.0.2.1", "/mnt/ka", crate::Version::V4_1);
    let o = NfsConfig {
        export: "/other".into(),
        ..other
    };
    let req = o.mount_request(None);
    let (kind, msg) = describe_foreign(&o, &req, mountinfo::find_at(&e, "/mnt/ka"), &e);
    assert_eq!(kind, ErrorKind::Failed);
    assert!(
        msg.contains("shows 127.0.0.1:/export (nfs4, addr=127.0.0.1)"),
        "{msg}"
    );
    let (kind, msg) = describe_foreign(&o, &req, None, &e);
    assert_eq!(kind, ErrorKind::Failed);
    assert!(msg.contains("nothing mounted"), "{msg}");
}

#[test]
fn sources_split_into_server_and_export() {
    assert_eq!(
        split_source("10.0.2.2:/export/"),
        Some(("10.0.2.2", "/export"))
    );
    assert_eq!(split_source("[fd00::2]:/e"), Some(("fd00::2", "/e")));
    assert_eq!(split_source("nocolon"), None);
}
