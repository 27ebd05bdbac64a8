use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cfg(v: Version, opts: Option<&str>) -> Result<NfsConfig, ConfigError> {
    NfsConfig::new(ip("10.0.2.2"), "/export/", "/mnt/data/", v, opts)
}

#[test]
fn version_parsing() {
    assert_eq!("3".parse::<Version>().unwrap(), Version::V3);
    assert_eq!("4.1".parse::<Version>().unwrap(), Version::V4_1);
    assert_eq!(" 2 ".parse::<Version>().unwrap(), Version::V2);
    assert!("5".parse::<Version>().is_err());
    assert!("v3".parse::<Version>().is_err());
    assert!("".parse::<Version>().is_err());
    assert!(Version::V4.matches_mounted("4.2"));
    assert!(!Version::V4_1.matches_mounted("4.2"));
    assert!(Version::V3.matches_mounted("3"));
    assert_eq!(
        Version::V4.candidates(None),
        [Version::V4_2, Version::V4_1, Version::V4_0]
    );
    assert_eq!(
        Version::V4.candidates(Some(1)),
        [Version::V4_1, Version::V4_0]
    );
    assert_eq!(Version::V4_1.candidates(Some(2)), [Version::V4_1]);
    assert_eq!(Version::V3.candidates(None), [Version::V3]);
    assert_eq!(Version::from_mounted("4"), Some(Version::V4_0));
    assert_eq!(Version::from_mounted("4.2"), Some(Version::V4_2));
    assert_eq!(Version::from_mounted("5"), None);
}

#[test]
fn default_v3_request() {
    let c = cfg(Version::V3, None).unwrap();
    assert_eq!(c.export, "/export");
    assert_eq!(c.mount_point, "/mnt/data");
    let r = c.mount_request(None);
    assert_eq!(r.source, "10.0.2.2:/export");
    assert_eq!(r.fstype, "nfs");
    assert_eq!(r.flags, 0);
    assert_eq!(
        r.data,
        "vers=3,hard,nolock,proto=tcp,timeo=600,retrans=2,rsize=32768,wsize=32768,actimeo=0,\
             mountaddr=10.0.2.2,mountproto=tcp,addr=10.0.2.2"
    );
}

#[test]
fn default_v4_request_has_clientaddr_and_no_mount_protocol() {
    let c = cfg(Version::V4_2, None).unwrap();
    let r = c.mount_request(Some(ip("10.0.2.15")));
    assert_eq!(r.fstype, "nfs4");
    assert!(r.data.starts_with("vers=4.2,hard,proto=tcp,"));
    assert!(r.data.contains("clientaddr=10.0.2.15"));
    assert!(!r.data.contains("mount"));
    assert!(!r.data.contains("nolock"));
    assert!(r.data.ends_with(",addr=10.0.2.2"));
}

#[test]
fn lifekeeper_recommended_string_is_accepted() {
    let c = cfg(
        Version::V3,
        Some("rw,nolock,bg,hard,nointr,tcp,nfsvers=3,timeo=600,rsize=32768,wsize=32768,actimeo=0"),
    )
    .unwrap();
    let r = c.mount_request(None);
    assert!(r.data.contains("proto=tcp"));
    assert!(!r.data.contains("nfsvers"));
    assert!(!r.data.contains("rw"));
    assert!(c.is_hard());
}

#[test]
fn generic_flags_become_ms_flags() {
    let c = cfg(
        Version::V3,
        Some("ro,nosuid,nodev,noexec,noatime,defaults,_netdev"),
    )
    .unwrap();
    assert_eq!(
        c.flags,
        libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_NOATIME
    );
    assert!(c.options.is_empty());
    let c = cfg(Version::V3, Some("ro,rw")).unwrap();
    assert_eq!(c.flags, 0);
}

#[test]
fn later_options_win() {
    let c = cfg(Version::V3, Some("hard,soft,timeo=10,timeo=20,lock,nolock")).unwrap();
    let d = c.mount_request(None).data;
    assert!(d.contains("soft") && !d.contains("hard"));
    assert!(d.contains("timeo=20") && !d.contains("timeo=10"));
    assert!(d.contains("nolock") && !d.contains(",lock"));
    assert!(!c.is_hard());
}

#[test]
fn contradictions_are_refused() {
    let cases: &[(Version, &str)] = &[
        (Version::V3, "vers=4"),
        (Version::V3, "nfsvers=4.1"),
        (Version::V4_2, "v3"),
        (Version::V4_1, "vers=4.2"),
        (Version::V4_1, "minorversion=2"),
        (Version::V3, "minorversion=1"),
        (Version::V4, "mountport=20048"),
        (Version::V4_2, "mountproto=tcp"),
        (Version::V3, "clientaddr=10.0.2.15"),
        (Version::V3, "udp"),
        (Version::V3, "proto=udp"),
        (Version::V3, "mountproto=udp"),
        (Version::V3, "addr=10.9.9.9"),
        (Version::V3, "mountaddr=10.9.9.9"),
        (Version::V3, "proto=carrier-pigeon"),
    ];
    for (v, o) in cases {
        let e = cfg(*v, Some(o));
        assert!(e.is_err(), "{o} with VERSION={v} was accepted");
    }
    // agreeing spellings are fine
    assert!(cfg(Version::V4, Some("vers=4.2")).is_ok());
    assert!(cfg(Version::V4_1, Some("minorversion=1")).is_ok());
    assert!(cfg(Version::V3, Some("addr=10.0.2.2,v3")).is_ok());
}

#[test]
fn malformed_options_are_refused() {
    for o in [
        "timeo",
        "timeo=abc",
        "timeo=-1",
        "hard=1",
        "ro=1",
        "sec",
        "sec=",
        "frobnicate",
        "bogus=3",
        "=3",
        "clientaddr=nohost",
    ] {
        assert!(cfg(Version::V4, Some(o)).is_err(), "{o} was accepted");
    }
    assert!(
        cfg(
            Version::V3,
            Some("sec=sys,lookupcache=none,noac,nconnect=4")
        )
        .is_ok()
    );
}

#[test]
fn bad_paths_and_addresses() {
    let s = ip("10.0.2.2");
    // each refusal names the setting and what is wrong with it
    for (server, export, mp, want) in [
        (
            s,
            "export",
            "/mnt/x",
            "EXPORT=\"export\" must be an absolute path",
        ),
        (
            s,
            "/ex port",
            "/mnt/x",
            "EXPORT=\"/ex port\" contains a NUL, comma or whitespace",
        ),
        (s, "/e", "mnt/x", "MOUNTPOINT=\"mnt/x\" is relative"),
        (s, "/e", "", "MOUNTPOINT is missing"),
        (s, "/e", "/", "MOUNTPOINT=/ is not allowed"),
        (
            s,
            "/e",
            "/mnt/../etc",
            "MOUNTPOINT=\"/mnt/../etc\" contains '.' or '..'",
        ),
        (
            ip("0.0.0.0"),
            "/e",
            "/mnt/x",
            "SERVER=0.0.0.0 is not a usable unicast address",
        ),
        (
            ip("224.0.0.1"),
            "/e",
            "/mnt/x",
            "SERVER=224.0.0.1 is not a usable unicast address",
        ),
    ] {
        let e = NfsConfig::new(server, export, mp, Version::V3, None).unwrap_err();
        assert!(e.0.starts_with(want), "{server} {export:?} {mp:?}: {e}");
    }
    let c = NfsConfig::new(s, "/", "/mnt//x/", Version::V3, None).unwrap();
    assert_eq!(c.export, "/");
    assert_eq!(c.mount_point, "/mnt/x");
}

#[test]
fn verify_against_captured_guest_mounts() {
    let v = crate::mountinfo::parse(crate::mountinfo::tests::GUEST_NFS).unwrap();
    let c3 = NfsConfig::new(ip("10.0.2.2"), "/export", "/mnt/v3", Version::V3, None).unwrap();
    assert_eq!(c3.verify(&v[0]), Vec::<String>::new());
    let c4 = NfsConfig::new(ip("10.0.2.2"), "/export", "/mnt/v4", Version::V4, None).unwrap();
    assert_eq!(c4.verify(&v[1]), Vec::<String>::new());
    // the v3 mount does not satisfy a v4.1, soft, other-server configuration
    let other = NfsConfig::new(
        ip("10.0.2.3"),
        "/export",
        "/mnt/v3",
        Version::V4_1,
        Some("soft"),
    )
    .unwrap();
    let bad = other.verify(&v[0]);
    assert_eq!(bad.len(), 4, "{bad:?}");
    assert!(bad.iter().any(|b| b.contains("vers=3")));
    assert!(bad.iter().any(|b| b.contains("mounted hard")));
}

#[test]
fn ipv6_source_is_bracketed() {
    let c = NfsConfig::new(ip("fd00::2"), "/e", "/mnt/x", Version::V4_2, None).unwrap();
    let r = c.mount_request(None);
    assert_eq!(r.source, "[fd00::2]:/e");
    assert!(r.data.contains("proto=tcp6,") && r.data.ends_with("addr=fd00::2"));
}

/// Whatever OPTIONS= holds, validation answers Ok or Err, never panics.
#[test]
fn random_options_never_panic() {
    let words: [&str; 16] = [
        "vers", "nfsvers", "=", ",", "3", "4.2", "hard", "soft", "timeo", "proto", "tcp", "udp",
        " ", "addr", "ro", "\u{e9}",
    ];
    let mut next = crate::test_rng(0xbf58_476d_1ce4_e5b9u64);
    let server: IpAddr = "192.0.2.7".parse().unwrap();
    for _ in 0..20_000 {
        let text: String = (0..next() % 12)
            .map(|_| words[(next() % words.len() as u64) as usize])
            .collect();
        for v in [Version::V3, Version::V4_2] {
            let _ = parse_options(&text, v, server);
        }
    }
}
