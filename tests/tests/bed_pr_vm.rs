//! Harness self-test: two I_T nexuses to one LIO logical unit over iSCSI on the guest
//! loopback, driven with sg_persist (a test tool only): register, reserve, preempt-and-abort,
//! and the fenced node's writes refused by the disk.

use std::time::Duration;

use tests::vm::{self, Vm};

#[test]
fn two_nexus_pr_round_trip() {
    let vm = Vm::new("bed_pr")
        .script_file("guest/bed_pr.sh")
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

/// Every project binary is built static and runs in the guest.
#[test]
fn project_binaries_run_in_guest() {
    let script = format!(
        r#"
        for b in {}; do
            have_bin $b || {{ fail $b-executes "not in the guest (did it build?)"; continue; }}
            $b --help >/dev/null 2>&1; rc=$?
            [ $rc -ne 126 ] && [ $rc -ne 127 ] && [ $rc -lt 128 ]; check $b-executes $? "rc=$rc"
        done
        "#,
        vm::PROJECT_BINS.join(" ")
    );
    let vm = Vm::new("vm_bins")
        .project_bins()
        .script(&script)
        .timeout(Duration::from_secs(60));
    let Some(out) = vm::run_or_skip(&vm) else {
        return;
    };
    let required: Vec<String> = vm::PROJECT_BINS
        .iter()
        .map(|b| format!("{b}-executes"))
        .collect();
    out.assert_passed(&required.iter().map(String::as_str).collect::<Vec<_>>());
}

/// A scenario that never ends is stopped at its wall-clock limit and QEMU is killed.
#[test]
fn wall_clock_limit_kills_a_hung_guest() {
    let vm = Vm::new("vm_timeout")
        .script("pass started\nsleep 600\npass never-reached\n")
        // room for a slow boot: under load (parallel guests on 2 cores) /init has started
        // only after 9.6 s
        .timeout(Duration::from_secs(30));
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
