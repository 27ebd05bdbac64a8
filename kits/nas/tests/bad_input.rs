//! Bad input is refused with exit 2 before anything is probed or mounted.
//!
//! Every case points at 192.0.2.1 (TEST-NET-1, never routed) with a mount point in a scratch
//! directory, so even a case that wrongly passed validation could not mount anything here.

use std::process::{Command, Output};

fn scratch() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("lkh-nas-bad-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Output {
    let d = scratch();
    Command::new(env!("CARGO_BIN_EXE_lkh-nas"))
        .args(args)
        .env("LKHELPERS_RUN_DIR", d.join("run"))
        .env("LKHELPERS_CONF_DIR", d.join("conf"))
        .env("LKHELPERS_LK_DEFAULTS", d.join("no-defaults"))
        .output()
        .unwrap()
}

fn restore(extra: &[&str]) -> Output {
    let mp = scratch().join("mnt").to_string_lossy().into_owned();
    let mut args = vec![
        "restore",
        "-t",
        "bad",
        "--no-config",
        "--timeout",
        "2",
        "--server",
        "192.0.2.1",
        "--export",
        "/export",
        "--mountpoint",
        mp.as_str(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn assert_usage(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

#[test]
fn invalid_settings_exit_2_and_mount_nothing() {
    let cases: &[(&[&str], &str)] = &[
        (&["--export", "export"], "EXPORT"),
        (&["--export", "/a b"], "EXPORT"),
        (&["--mountpoint", "mnt/x"], "MOUNTPOINT"),
        (&["--mountpoint", "/mnt/../etc"], "MOUNTPOINT"),
        (&["--version", "5"], "VERSION"),
        (&["--version", "v3"], "VERSION"),
        (&["--server", "999.1.1.1"], "SERVER"),
        (&["--server", "10.0.0.1/24"], "SERVER"),
        (&["--server", "0.0.0.0"], "SERVER"),
        (&["--server", "nas_bad"], "SERVER"),
        (&["--server", "-nas"], "SERVER"),
        (&["--server", "nas.example.com/x"], "SERVER"),
        (&["--options", "vers=4"], "contradicts VERSION"),
        (&["--options", "nfsvers=4.2,hard"], "contradicts VERSION"),
        (&["--options", "udp"], "udp"),
        (&["--options", "proto=udp"], "proto=udp"),
        (&["--options", "clientaddr=10.0.0.2"], "clientaddr"),
        (&["--options", "addr=10.9.9.9"], "contradicts SERVER"),
        (&["--options", "timeo=soon"], "timeo"),
        (&["--options", "frobnicate"], "unknown NFS option"),
        (
            &["--version", "4.2", "--options", "mountport=20048"],
            "MOUNT protocol",
        ),
        (
            &["--version", "4.1", "--options", "minorversion=2"],
            "minorversion",
        ),
        (&["--io-check", "maybe"], "IO_CHECK"),
        (&["--on-failure", "panic"], "ON_FAILURE"),
        (&["--timeout", "0"], "TIMEOUT"),
    ];
    for (extra, needle) in cases {
        let o = restore(extra);
        assert_usage(&o, needle);
    }
}

#[test]
fn missing_settings_exit_2() {
    let o = run(&[
        "restore",
        "-t",
        "bad",
        "--no-config",
        "--server",
        "192.0.2.1",
        "--export",
        "/e",
    ]);
    assert_usage(&o, "MOUNTPOINT is not set");
    let o = run(&[
        "quickCheck",
        "-t",
        "bad",
        "--no-config",
        "--export",
        "/e",
        "--mountpoint",
        "/m",
    ]);
    assert_usage(&o, "SERVER is not set");
    let o = run(&["restore", "-t", "../x", "--no-config"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["probe", "not-an-ip"]);
    assert_usage(&o, "not an IP address");
    let o = run(&["probe", "192.0.2.1", "relative"]);
    assert_usage(&o, "EXPORT");
}

#[test]
fn missing_config_file_is_a_usage_error() {
    let o = run(&["quickCheck", "-t", "nosuchresource"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A well-formed SERVER= name that does not resolve (`.invalid` never does, RFC 6761): restore
/// fails (exit 1, the resolver's answer, not bad input) and mounts nothing; remove of the
/// never-restored resource asks no resolver and succeeds (nothing is mounted); quickCheck and
/// `status` ask no resolver either: "not mounted" (exit 1, "not running" to Pacemaker), the
/// name in the message, the server not probed.
#[test]
fn an_unresolvable_name_fails_only_restore() {
    let mp = scratch().join("mnt-name").to_string_lossy().into_owned();
    let args = |action: &'static str| {
        vec![
            action,
            "-t",
            "named",
            "--no-config",
            "--timeout",
            "8",
            "--server",
            "nas-gone.invalid",
            "--export",
            "/export",
            "--mountpoint",
            mp.as_str(),
        ]
    };
    let o = run(&args("restore"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(err.contains("SERVER=nas-gone.invalid"), "{err}");
    let o = run(&args("remove"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "stderr: {err}");
    assert!(err.contains("is not mounted"), "{err}");
    assert!(!err.contains("resolve"), "remove asked the resolver: {err}");
    let resolver = ["does not resolve", "name resolution", "no address in"];
    let o = run(&args("quickCheck"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(
        err.contains("not mounted: nas-gone.invalid:/export is not mounted"),
        "{err}"
    );
    assert!(
        !resolver.iter().any(|r| err.contains(r)),
        "quickCheck asked: {err}"
    );
    let mut st = args("status");
    st.remove(0);
    let o = run(&[&["status"], &st[..]].concat());
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stdout: {out} stderr: {err}");
    assert!(out.contains("not probed: SERVER=nas-gone.invalid"), "{out}");
    assert!(
        !resolver.iter().any(|r| err.contains(r)),
        "status asked: {err}"
    );
}
