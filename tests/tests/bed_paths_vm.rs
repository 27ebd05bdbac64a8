//! Test-bed self-test for the path pieces: disks without PR support, dm-multipath over two
//! iSCSI paths, a WWPN flip (new initiator name), All Paths Down and recovery.

use std::time::Duration;

use tests::vm::{self, Disk, Vm};

#[test]
fn paths_flip_apd_and_nopr_disks() {
    let vm = Vm::new("bed_paths")
        .script_file("guest/bed_paths.sh")
        .disk(Disk::VirtioBlk { size_mb: 16 })
        .disk(Disk::ScsiHd { size_mb: 16 })
        .timeout(Duration::from_secs(150));
    let Some(out) = vm::run_or_skip(&vm) else {
        return;
    };
    out.assert_passed(&[
        "nopr-virtio-no-pr",
        "nopr-scsi-pr-rejected",
        "mpath-two-paths",
        "mpath-io-with-one-path",
        "mpath-path-reinstated",
        "flip-old-key-not-registered-on-new-nexus",
        "flip-mpath-io",
        "apd-io-fails",
        "apd-recovered",
    ]);
}
