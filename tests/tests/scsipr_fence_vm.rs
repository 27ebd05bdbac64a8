//! VM proof of `fence_lkhscsipr`, lkh-scsipr's Pacemaker fence agent (issue 12): the agent
//! called as Pacemaker's fencer calls it (no Pacemaker in the guest), on one LIO logical unit
//! seen over iSCSI by two cluster nodes (one I_T nexus each). `sg_persist` and `sg_dd` are
//! independent witnesses only. Scenario: `tests/guest/scsipr_fence.sh`.

use std::time::Duration;

use tests::vm::{self, Vm};

/// Unfencing from stdin, status 0/2, monitor, list, validate-all; typos in the key map, an
/// unknown plug, duplicate keys, self-fencing and reboot refused with registrations unchanged;
/// a node that is not registered cannot fence (issue 28); off of A from B honours --delay, cuts
/// A's writes (RESERVATION CONFLICT), and A's quickCheck says fenced; A, fenced and not
/// rebooted, cannot fence B back (exit 1, nothing changed, B keeps writing); on brings A back;
/// monitor fails when A's path is down and, bounded by power_timeout, in All Paths Down.
#[test]
fn fence_agent_two_nodes_one_lu() {
    let vm = Vm::new("scsipr_fence")
        .project_bins()
        .script_file("guest/scsipr_fence.sh")
        .timeout(Duration::from_secs(240));
    let Some(out) = vm::run_or_skip(&vm) else {
        return;
    };
    out.assert_passed(&[
        "key-a",
        "key-b",
        "node-key-stable",
        "metadata",
        "metadata-actions",
        "list",
        "validate-all",
        "validate-bad-device",
        "a-on-stdin",
        "a-registered",
        "a-reserved",
        "on-wrong-node-refused",
        "b-on",
        "b-registered",
        "a-on-idempotent",
        "a-status-on",
        "b-status-on",
        "monitor",
        "a-write-works",
        "gen-readable",
        "typo-off-refused",
        "typo-status-not-off",
        "typo-monitor-fails",
        "unknown-plug-refused",
        "duplicate-key-refused",
        "self-fence-refused",
        "off-needs-own-key-in-map",
        "reboot-refused",
        "unknown-option-refused",
        "typos-changed-nothing",
        "a-still-registered",
        "b-unregistered-before-off",
        "unregistered-off-refused",
        "unregistered-off-changed-nothing",
        "b-on-again",
        "b-off-a",
        "delay-honoured",
        "a-key-gone",
        "b-key-kept",
        "b-holds",
        "a-write-refused",
        "b-write-works",
        "a-quickcheck-fenced",
        "a-status-off",
        "b-status-still-on",
        "b-off-a-again",
        "off-again-changed-nothing",
        "fenced-a-off-b-refused",
        "fenced-a-off-changed-nothing",
        "b-write-works-after-a-off",
        "a-on-back",
        "a-registered-again",
        "a-status-on-again",
        "a-write-works-again",
        "monitor-path-down-fails",
        "monitor-path-up",
        "monitor-apd-fails",
        "fence-done",
    ]);
}
