//! `detect` and Hyper-V's guest parameters (the KVP pool): the host and VM it names, in text
//! and JSON, as evidence for the Hyper-V family only, and the pool read defensively (odd
//! bytes, no daemon, a link, someone else's file, a huge file).

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{Scratch, code, copy_tree, fixture, run, stderr, stdout};

fn detect(root: &std::path::Path, json: bool) -> String {
    let mut args = vec![
        "detect",
        "--no-network",
        "--sysroot",
        root.to_str().unwrap(),
    ];
    if json {
        args.push("--json");
    }
    let o = run(&args);
    assert_eq!(code(&o), 0, "{}: {}", root.display(), stderr(&o));
    stdout(&o)
}

const POOL: &str = "var/lib/hyperv/.kvp_pool_3";

#[test]
fn on_premises_pool_names_the_host_and_the_vm() {
    let out = detect(&fixture("hyperv-kvp"), false);
    common::has(&out, "platform: hyperv (on-premises Hyper-V guest)");
    assert!(
        out.contains("hyper-v host: hv1.corp.example (PhysicalHostNameFullyQualified in "),
        "{out}"
    );
    common::has(
        &out,
        "vm: lk-node-a (id 5D3F2A11-7C1B-4E0B-9A43-3B2C1D0E9F01)",
    );
    assert!(out.contains("kvp daemon: running (pid 604)"), "{out}");
    assert!(out.contains(": 10 items"), "{out}");
    assert!(
        out.contains("names the host \"hv1.corp.example\"") && !out.contains("warning:"),
        "{out}"
    );
    let json = detect(&fixture("hyperv-kvp"), true);
    for part in [
        r#""node":"node-a""#,
        r#""hyperv_host":"hv1.corp.example""#,
        r#""vm_name":"lk-node-a""#,
        r#""vm_id":"5D3F2A11-7C1B-4E0B-9A43-3B2C1D0E9F01""#,
        r#""hyperv_host_note":null"#,
        r#""state":"read","items":10"#,
        r#""daemon":"running","daemon_pids":[604]"#,
        r#""host_item":"PhysicalHostNameFullyQualified""#,
    ] {
        assert!(json.contains(part), "{part}: {json}");
    }
}

#[test]
fn an_azure_pool_is_hyperv_family_evidence_not_azure_proof() {
    let out = detect(&fixture("azure-kvp"), false);
    // offline the verdict rests on the asset tag alone, pool or not
    common::has(&out, "platform: azure (Microsoft Azure VM)");
    common::has(&out, "confidence: guess");
    assert!(out.contains("hyper-v host: BN8AAP071905231"), "{out}");
    assert!(out.contains("kvp daemon: running (pid 733)"), "{out}");
    assert!(
        out.contains("does not tell Azure from on-premises"),
        "{out}"
    );
    let json = detect(&fixture("azure-kvp"), true);
    assert!(
        json.contains(r#""hyperv_host":"BN8AAP071905231""#),
        "{json}"
    );
    assert!(json.contains(r#""is_azure":true"#), "{json}");
}

#[test]
fn a_pool_alone_makes_hyperv_likely_never_azure_or_certain() {
    // no VMBus listing, no DMI: only the pool (and its daemon) say Hyper-V
    let s = Scratch::new("kvp-only");
    let root = s.path().join("t");
    std::fs::create_dir_all(root.join("var/lib/hyperv")).unwrap();
    std::fs::copy(fixture("hyperv-kvp").join(POOL), root.join(POOL)).unwrap();
    let out = detect(&root, false);
    common::has(&out, "platform: hyperv (on-premises Hyper-V guest)");
    common::has(&out, "confidence: likely");
    assert!(out.contains("rests on the KVP pool"), "{out}");
    // the same pool on a KVM guest (a disk image moved from Hyper-V) disagrees
    let kvm = s.path().join("kvm");
    copy_tree(&fixture("kvm"), &kvm);
    std::fs::create_dir_all(kvm.join("var/lib/hyperv")).unwrap();
    std::fs::copy(fixture("hyperv-kvp").join(POOL), kvm.join(POOL)).unwrap();
    let out = detect(&kvm, false);
    common::has(&out, "platform: kvm (KVM/QEMU guest)");
    common::has(&out, "confidence: likely");
    assert!(
        out.contains("a pool copied from a Hyper-V VM says it too) (disagrees)"),
        "{out}"
    );
}

#[test]
fn odd_bytes_are_shown_escaped_and_the_stale_host_is_warned_of() {
    let out = detect(&fixture("hyperv-kvp-odd"), false);
    // the newline and the escape sequence cannot start a line of their own
    assert!(
        out.contains("hyper-v host: HV\\x0a2\\xff\\x1b[31m (PhysicalHostName in "),
        "{out}"
    );
    assert!(!out.lines().any(|l| l.starts_with("2")), "{out}");
    common::has(&out, "vm: lk-node-b");
    assert!(
        out.contains("warning: the KVP daemon is not running"),
        "{out}"
    );
    for note in [
        "the last 1000 bytes were ignored",
        "value holds bytes that are not printable UTF-8",
        "record 3 has a value but no key: skipped",
        "the key has no terminating NUL",
        "the value has no terminating NUL",
        "PhysicalHostName appears again; the first one counts",
    ] {
        assert!(out.contains(note), "{note}: {out}");
    }
    assert!(
        !out.contains(&"X".repeat(100)),
        "a 512-byte key is not echoed whole: {out}"
    );
    let json = detect(&fixture("hyperv-kvp-odd"), true);
    assert!(
        json.contains(r#""hyperv_host":"HV\\x0a2\\xff\\x1b[31m""#),
        "{json}"
    );
    assert!(json.contains(r#""hyperv_host_note":"the KVP daemon is not running"#));
}

#[test]
fn no_daemon_says_what_to_install() {
    let out = detect(&fixture("hyperv-no-kvp"), false);
    assert!(
        out.contains("hyper-v host: unknown: ")
            && out.contains("does not exist: the KVP daemon has not run on this node")
            && out.contains("hyperv-daemons"),
        "{out}"
    );
    common::has(&out, "kvp daemon: not running");
    let json = detect(&fixture("hyperv-no-kvp"), true);
    assert!(json.contains(r#""hyperv_host":null"#), "{json}");
    assert!(json.contains(r#""state":"missing""#), "{json}");
    // other platforms have no host to miss
    let out = detect(&fixture("kvm"), false);
    common::has(&out, "hyper-v host: none (not a Hyper-V guest)");
}

/// The hyperv-kvp tree in a scratch directory, its pool replaced by `make(path)`.
fn tampered(name: &str, make: impl FnOnce(&std::path::Path)) -> (Scratch, String) {
    let s = Scratch::new(name);
    let root = s.path().join("t");
    copy_tree(&fixture("hyperv-kvp"), &root);
    let pool = root.join(POOL);
    std::fs::remove_file(&pool).unwrap();
    make(&pool);
    let out = detect(&root, false);
    (s, out)
}

#[test]
fn a_pool_that_is_a_link_is_not_followed() {
    let (_s, out) = tampered("kvp-link", |pool| {
        let real = pool.with_file_name("elsewhere");
        std::fs::copy(fixture("hyperv-kvp").join(POOL), &real).unwrap();
        std::os::unix::fs::symlink(&real, pool).unwrap();
    });
    assert!(
        out.contains("hyper-v host: unknown: the KVP pool is not read: "),
        "{out}"
    );
    assert!(out.contains("is a symbolic link"), "{out}");
}

#[test]
fn a_pool_others_can_write_or_own_is_not_trusted() {
    let (_s, out) = tampered("kvp-mode", |pool| {
        std::fs::copy(fixture("hyperv-kvp").join(POOL), pool).unwrap();
        std::fs::set_permissions(pool, std::fs::Permissions::from_mode(0o666)).unwrap();
    });
    assert!(out.contains("writable by group or others"), "{out}");
    assert!(out.contains("hyper-v host: unknown"), "{out}");
    if nix::unistd::geteuid().is_root() {
        let (_s, out) = tampered("kvp-owner", |pool| {
            std::fs::copy(fixture("hyperv-kvp").join(POOL), pool).unwrap();
            std::os::unix::fs::chown(pool, Some(65534), Some(65534)).unwrap();
        });
        assert!(out.contains("owned by uid 65534"), "{out}");
        assert!(out.contains("hyper-v host: unknown"), "{out}");
    }
}

#[test]
fn a_huge_pool_is_refused_without_reading_it_all() {
    let (_s, out) = tampered("kvp-huge", |pool| {
        let f = std::fs::File::create(pool).unwrap();
        f.set_len(64 << 20).unwrap();
    });
    assert!(out.contains("larger than 1048576 bytes"), "{out}");
    assert!(out.contains("hyper-v host: unknown"), "{out}");
}

#[test]
fn a_fifo_in_the_pools_place_does_not_hang() {
    let (_s, out) = tampered("kvp-fifo", |pool| {
        nix::unistd::mkfifo(pool, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    });
    assert!(out.contains("not a regular file"), "{out}");
}
