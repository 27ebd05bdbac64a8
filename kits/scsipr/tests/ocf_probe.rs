//! `ocf:lkhelpers:scsipr` on a node that lacks the device (issue 27): a probe answers 7 (not
//! running here) — the disk cannot be held through a device this node does not have —, while
//! start and a recurring monitor say 5 (ban from this node only) and only a malformed value
//! says 6 (every node). Through the binary, as Pacemaker calls it; the device named does not
//! exist, so no disk is touched.

use tests::ocf::{Agent, assert_code};

const MISSING: &str = "/dev/disk/by-id/scsi-lkh-no-such-disk";

fn agent() -> Agent {
    Agent::new(
        "scsipr",
        std::path::Path::new(env!("CARGO_BIN_EXE_lkh-scsipr")),
        "disk",
    )
}

#[test]
fn a_probe_on_a_node_without_the_device_is_not_running() {
    let a = agent();
    let p = [("OCF_RESKEY_device", MISSING)];
    let o = a.probe(&p);
    assert_code(&o, 7, "probe without the device");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("info: monitor: not running:"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_code(&a.monitor(&p), 5, "recurring monitor without the device");
    let o = a.call("start", &p);
    assert_code(&o, 5, "start without the device");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(MISSING),
        "the reason names the device: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_code(
        &a.call("validate-all", &p),
        0,
        "validate-all checks values only",
    );
}

#[test]
fn a_malformed_value_is_wrong_on_every_node() {
    let a = agent();
    let p = [("OCF_RESKEY_device", MISSING), ("OCF_RESKEY_key", "0")];
    assert_code(&a.probe(&p), 6, "probe with a malformed key");
    assert_code(&a.call("start", &p), 6, "start with a malformed key");
}

/// A stop on a node that lacks the device succeeds: this node cannot write to a disk it does
/// not see, and a failed stop would get it fenced. Through the binary, with a node key (so
/// remove really looks for the disk); a name that is no disk at all stays a configuration
/// error.
#[test]
fn a_stop_on_a_node_without_the_device_succeeds() {
    use std::os::unix::fs::PermissionsExt;
    let a = agent();
    let conf = a.dir().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o755)).unwrap();
    let key = conf.join("node.key");
    std::fs::write(&key, "0x4c4b00000000a1a1\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = a.call("stop", &[("OCF_RESKEY_device", MISSING)]);
    assert_code(&o, 0, "stop without the device");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot write to a disk it does not see"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_code(
        &a.call("stop", &[("OCF_RESKEY_device", "/etc/passwd")]),
        6,
        "stop naming a file that is no block device",
    );
}
