//! `ocf:lkhelpers:ip` on a node that lacks what the resource needs (issue 27): a probe answers
//! 7 (not running here) whatever the node lacks — the interface, a default gateway — while
//! start and a recurring monitor say 5 (this node only) and only a malformed value says 6
//! (every node). Through the binary, as Pacemaker calls it; nothing is changed (no address is
//! added: every call here fails before that), so no root and no namespace is needed.

use tests::ocf::{Agent, assert_code};

/// TEST-NET-2: on no interface of this host, and no default gateway lies in it.
const ADDRESS: &str = "198.51.100.10/24";

fn agent() -> Agent {
    Agent::new(
        "ip",
        std::path::Path::new(env!("CARGO_BIN_EXE_lkh-ip")),
        "vip",
    )
}

fn params(interface: &str) -> [(&str, &str); 2] {
    [
        ("OCF_RESKEY_address", ADDRESS),
        ("OCF_RESKEY_interface", interface),
    ]
}

#[test]
fn a_probe_on_a_node_without_the_interface_is_not_running() {
    let a = agent();
    let p = params("lkh-none0");
    let o = a.probe(&p);
    assert_code(&o, 7, "probe without the interface");
    assert_code(&a.monitor(&p), 5, "recurring monitor without the interface");
    let o2 = a.call("start", &p);
    assert_code(&o2, 5, "start without the interface");
    assert!(
        String::from_utf8_lossy(&o2.stderr)
            .contains("ocf-exit-reason:INTERFACE lkh-none0 does not exist on this node"),
        "{}",
        String::from_utf8_lossy(&o2.stderr)
    );
    assert_code(
        &a.call("validate-all", &p),
        0,
        "validate-all checks values only",
    );
}

/// The case: `interface=lo`, no TARGETS, no default gateway via lo. The probe
/// answered 6 (OCF_ERR_CONFIGURED), which makes Pacemaker stop the resource on every node.
#[test]
fn a_probe_on_a_node_without_a_default_gateway_is_not_running() {
    let a = agent();
    let p = params("lo");
    let o = a.probe(&p);
    assert_code(&o, 7, "probe without a default gateway");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("info: monitor: not running:"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_code(
        &a.monitor(&p),
        7,
        "recurring monitor: the address is not here",
    );
    let o = a.call("start", &p);
    assert_code(&o, 5, "start without a default gateway: not on this node");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("there is no default gateway via lo"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_malformed_value_is_wrong_on_every_node() {
    let a = agent();
    let p = [
        ("OCF_RESKEY_address", "198.51.100.300/24"),
        ("OCF_RESKEY_interface", "lo"),
    ];
    assert_code(&a.probe(&p), 6, "probe with a malformed address");
    assert_code(&a.call("start", &p), 6, "start with a malformed address");
}

/// A stop on a node that lacks the interface succeeds when the address is on no interface of
/// this node (it cannot be carried by an interface that is gone), and a failed stop would get
/// the node fenced.
#[test]
fn a_stop_on_a_node_without_the_interface_succeeds() {
    let a = agent();
    let o = a.call("stop", &params("lkh-none0"));
    assert_code(&o, 0, "stop without the interface");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is on no interface: nothing to remove"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
