//! Harness self-test: two I_T nexuses to one LIO logical unit over iSCSI on the guest
//! loopback, driven with sg_persist (a test tool only): register, reserve, preempt-and-abort,
//! and the fenced node's writes refused by the disk.

use std::time::Duration;

use tests::vm::{self, Vm};

#[test]
fn two_nexus_pr_round_trip() {
    let vm = Vm::new("vm_pr")
        .script_file("guest/scenarios/pr-roundtrip.sh")
        .timeout(Duration::from_secs(120));
    let Some(out) = vm::run_or_skip(&vm) else {
        return;
    };
    out.assert_passed(&[
        "setup",
        "same-lu",
        "a-register",
        "b-register",
        "a-reserve",
        "b-preempt-abort-a",
        "a-write-refused",
        "a-data-intact-on-b",
        "b-clear",
    ]);
}
