//! VM proof of issue 18 items 3–5 and issue 15 items 5–6 against a second SCSI target, tgt
//! (`lkh.target=tgt`), with LIO as the control: doctor, status, identity from several
//! designators, the sg node. Scenario: `tests/guest/scsipr_target.sh`.

use std::time::Duration;

use tests::vm::{self, Vm};

fn run(target: &str, required: &[&str]) {
    let vm = Vm::new(&format!("scsipr_target_{target}"))
        .project_bins()
        .append(&format!("lkh.target={target}"))
        .script_file("guest/scsipr_target.sh")
        .timeout(Duration::from_secs(200));
    let Some(out) = vm::run_or_skip(&vm) else {
        return;
    };
    let common = [
        "t-doctor-runs",
        "t-doctor-left-nothing",
        "t-doctor-shows-sg-node",
        "t-doctor-six-types",
        "t-doctor-two-paths",
        "t-doctor-two-paths-left-nothing",
        "t-b-restore",
        "t-doctor-skips-when-registered",
        "t-doctor-wrote-nothing",
        "t-status-json-sg-node",
        "t-b-remove",
        "t-private-sg-node",
        "t-status-shows-private-node",
        "t-private-node-removed",
        "t-a-remove",
        "t-sg-unloaded",
        "t-nosg-refused",
        "t-sg-back",
        "t-nosg-sent-nothing",
    ];
    let all: Vec<&str> = common.iter().chain(required).copied().collect();
    out.assert_passed(&all);
    eprintln!("{}", out.summary());
}

/// tgt: no PREEMPT AND ABORT, no READ FULL STATUS, designators from target id and LUN,
/// REPORT SUPPORTED OPERATION CODES claiming what it rejects.
#[test]
fn scsipr_target_tgt() {
    run(
        "tgt",
        &[
            "t-doctor-names-preempt-abort",
            "t-doctor-names-full-status",
            "t-doctor-rsoc-claim",
            "t-doctor-weak-designators",
            "t-doctor-verdict",
            "t-status-says-no-initiators",
            "t-status-json-no-initiators",
            "t-dup-b-restore",
            "t-dup-warning-honest",
            "t-twolu-status-refused",
            "t-twolu-restore-refused",
            "t-twolu-sent-nothing",
        ],
    );
}

/// LIO, the control: the same doctor and status find nothing missing.
#[test]
fn scsipr_target_lio() {
    run(
        "lio",
        &[
            "t-doctor-no-warnings",
            "t-doctor-preempts-work",
            "t-status-json-initiators",
        ],
    );
}
