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

/// The project's binaries are built static and run in the guest (those that build today).
#[test]
fn project_binaries_run_in_guest() {
    let vm = Vm::new("vm_bins")
        .project_bins()
        .script(
            r#"
            n=0
            for b in lkh-scsipr lkh-nas lkh-ip lkh-platform; do
                have_bin $b || { note "$b not built yet"; continue; }
                n=$((n + 1))
                $b --help >/dev/null 2>&1; rc=$?
                [ $rc -ne 126 ] && [ $rc -ne 127 ] && [ $rc -lt 128 ]; check $b-executes $? "rc=$rc"
            done
            pass binaries-listed "$n present"
            "#,
        )
        .timeout(Duration::from_secs(60));
    let Some(out) = vm::run_or_skip(&vm) else {
        return;
    };
    out.assert_passed(&["binaries-listed"]);
}

/// A scenario that never ends is stopped at its wall-clock limit and QEMU is killed.
#[test]
fn wall_clock_limit_kills_a_hung_guest() {
    let vm = Vm::new("vm_timeout")
        .script("pass started\nsleep 600\npass never-reached\n")
        .timeout(Duration::from_secs(12));
    let Some(out) = vm::run_or_skip(&vm) else {
        return;
    };
    eprintln!("{}", out.summary());
    assert!(out.timed_out, "the run should have hit its limit");
    assert!(out.passed("started"), "checks before the hang are kept");
    assert!(out.check("never-reached").is_none());
    assert_eq!(out.rc, None);
    assert!(!out.problems(&[]).is_empty());
}
