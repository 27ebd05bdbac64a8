//! lkh-nas against the Linux kernel NFS server (knfsd) running in the guest itself, the
//! second server implementation beside nfs-ganesha (`nas_vm`): every version, one server by
//! two addresses, rpc.mountd dead under a working mount, stop/freeze/restart, a v4-only and a
//! 4.1+-only server (issue 17). One boot runs `guest/nas_knfsd.sh`; no host server needed.

use std::time::Duration;

use tests::vm::{self, Vm};

#[test]
fn nas_kit_against_knfsd() {
    let vm = Vm::new("nas_knfsd")
        .project_bins()
        .script_file("guest/nas_knfsd.sh")
        .timeout(Duration::from_secs(300));
    let Some(out) = vm::run_or_skip(&vm) else {
        return;
    };
    out.assert_passed(&[
        "knfsd-start",
        "restore-k3",
        "restore-k40",
        "restore-k41",
        "restore-k42",
        "restore-k4",
        "version-4-negotiates-4.2",
        "remove-ended-cwd-user",
        "restore-kb-merged",
        "merged-mount-undone",
        "qc-k3-mountd-dead",
        "recover-k3-mountd-dead",
        "status-json-warns-mountd-dead",
        "status-json-mountd-dead-healthy",
        "qc-k3-stopped",
        "qc-k3-after-restart",
        "qc-k3-frozen",
        "qc-k3-thawed",
        "restore-k3-v4only",
        "v4only-v3-mounted-nothing",
        "restore-k4-v41only",
        "restore-k40-v41only",
        "probe-v41only-as-40",
        "no42-version-4-is-4.1",
        "all-unmounted",
    ]);
}
