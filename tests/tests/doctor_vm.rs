//! `lkh-platform doctor` on a node of the test bed with a disk, a share and an address in
//! service through gen/app's copies: healthy, then one broken (the NFS server frozen): the
//! exit code, the table and the JSON say which (`guest/doctor_vm.sh`).

use std::time::Duration;

use tests::vm::{self, Vm};

#[test]
fn doctor_reports_the_node_then_the_broken_share() {
    let Some(nfs) = vm::nfs_or_skip("doctor_vm") else {
        return;
    };
    let vm = Vm::new("doctor_vm")
        .nfs(&nfs)
        .project_bins()
        .script_file("guest/doctor_vm.sh")
        .timeout(Duration::from_secs(240));
    let Some(out) = vm::run_or_skip(&vm) else {
        return;
    };
    out.assert_passed(&[
        "layout",
        "restore-disk",
        "restore-share",
        "restore-vip",
        "doctor-healthy-exit-0",
        "doctor-healthy-result",
        "doctor-healthy-rows",
        "doctor-lifekeeper-wiring",
        "doctor-json-healthy",
        "doctor-json-share-healthy",
        "doctor-json-defender",
        "server-frozen",
        "doctor-broken-exit-1",
        "doctor-broken-names-share",
        "doctor-broken-others-healthy",
        "doctor-broken-result",
        "doctor-json-names-share",
        "server-thawed",
    ]);
}
