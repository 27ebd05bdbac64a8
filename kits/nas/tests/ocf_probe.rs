//! `ocf:lkhelpers:nas` on a node that lacks what the resource needs (issue 27): no mount
//! point, and a server name this node cannot resolve (a probe never asks the resolver) or an
//! address it cannot reach. A probe answers 7 (not running here) whatever the node lacks; only
//! a malformed value says 6 (every node). Through the binary, as Pacemaker calls it; nothing is
//! mounted (the mount point does not exist and no call here mounts).

use tests::ocf::{Agent, assert_code};

fn agent() -> Agent {
    Agent::new(
        "nas",
        std::path::Path::new(env!("CARGO_BIN_EXE_lkh-nas")),
        "share",
    )
}

#[test]
fn a_probe_on_a_node_without_the_mount_point_or_the_server_is_not_running() {
    let a = agent();
    let mp = a.dir().join("no-such-dir/share");
    let mp = mp.to_str().unwrap();
    for server in ["nas.invalid", "198.51.100.1"] {
        let p = [
            ("OCF_RESKEY_server", server),
            ("OCF_RESKEY_export", "/export"),
            ("OCF_RESKEY_mountpoint", mp),
            // Pacemaker's timeout for the operation: the probe of an unreachable server is
            // cut at 2 s
            ("OCF_RESKEY_CRM_meta_timeout", "3000"),
        ];
        let o = a.probe(&p);
        assert_code(&o, 7, &format!("probe, SERVER={server}"));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("info: monitor: not running:"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_code(
            &a.monitor(&p),
            7,
            &format!("recurring monitor, SERVER={server}"),
        );
        assert_code(&a.call("stop", &p), 0, &format!("stop, SERVER={server}"));
    }
}

#[test]
fn a_malformed_value_is_wrong_on_every_node() {
    let a = agent();
    let p = [
        ("OCF_RESKEY_server", "198.51.100.1"),
        ("OCF_RESKEY_export", "export"),
        ("OCF_RESKEY_mountpoint", "/mnt/lkh-never"),
    ];
    assert_code(&a.probe(&p), 6, "probe with a malformed export");
    assert_code(&a.call("start", &p), 6, "start with a malformed export");
}
