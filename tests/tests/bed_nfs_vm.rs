//! NFS test-bed self-test: the guest mounts the host's nfs-ganesha with NFSv3 and v4.2, the
//! server is stopped and frozen (stat must fail within 5 s) and brought back (stat recovers).

use std::time::Duration;

use tests::vm::{self, Vm};

#[test]
fn nfs_mount_outage_and_recovery() {
    let Some(nfs) = vm::nfs_or_skip("bed_nfs_vm") else {
        return;
    };
    std::fs::write(nfs.export_dir().join("hello.txt"), "hello-from-host\n").expect("export file");
    let vm = Vm::new("bed_nfs")
        .nfs(&nfs)
        .script_file("guest/bed_nfs.sh")
        .timeout(Duration::from_secs(150));
    let Some(out) = vm::run_or_skip(&vm) else {
        return;
    };
    out.assert_passed(&[
        "mount-v3",
        "mount-v4",
        "stat-v3-fails-after-stop",
        "stat-v4-fails-after-stop",
        "stat-v3-recovers-after-stop",
        "stat-v4-recovers-after-freeze",
        "stat-after-restart",
    ]);
    let from_guest =
        std::fs::read_to_string(nfs.export_dir().join("guest.txt")).unwrap_or_default();
    assert_eq!(
        from_guest, "from-guest\n",
        "file written by the guest on the host export"
    );
}
