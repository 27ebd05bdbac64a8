//! lkh-nas against the Linux kernel NFS server (knfsd) running in the guest itself, the
//! second server implementation beside nfs-ganesha (`nas_vm`): every version, one server by
//! two addresses, rpc.mountd dead under a working mount and restarted on another port, the
//! learnt record lost or out of date (port, handle), a mount that is not the negotiated
//! version, stop/restart, a silent (frozen) server, a v4-only, a 4.1+-only and a v3-only
//! server (issue 17). One boot runs `guest/nas_knfsd.sh`; no host server needed.

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
        "restore-kr-mount-waits",
        "restore-kr-fails",
        "restore-kr-says-the-mount-appeared-at--mnt-kr-moved-instead",
        "restore-kr-says-nothing-is-left-mounted",
        "restore-kr-left-nothing",
        "mount-k4-41-by-hand",
        "k4-by-hand-is-4.1",
        "qc-k4-as-41",
        "qc-k4-as-41-says-not-mounted-as-negotiated",
        "k4-by-hand-removed",
        "remove-ended-cwd-user",
        "restore-kb-merged",
        "merged-mount-undone",
        "k3-recorded-at-restore",
        "qc-k3-no-record",
        "qc-records-what-it-learnt",
        "qc-k3-nfs-port-changed",
        "record-nfs-port-rewritten",
        "qc-k3-stale-handle",
        "record-root-handle-rewritten",
        "qc-k3-mountd-dead",
        "qc-k3-mountd-dead-says-new-mounts-would-fail",
        "recover-k3-mountd-dead",
        "status-json-warns-mountd-dead",
        "status-json-mountd-dead-healthy",
        "mountd-restart-new-port",
        "qc-k3-mountd-moved",
        "qc-k3-mountd-moved-no-warning",
        "record-mount-port-moved",
        "qc-k3-mountd-back-no-warning",
        "qc-k3-stopped",
        "qc-k3-after-restart",
        "knfsd-freeze",
        "qc-k3-frozen",
        "qc-k3-frozen-bounded",
        "qc-k3-frozen-says-mount-wedged",
        "qc-k3-frozen-no-mount-warning",
        "qc-k3-frozen-again-bounded",
        "no-stuck-checkers",
        "qc-k42-frozen-says-server-not-answering",
        "restore-k3c-frozen",
        "restore-k3c-frozen-bounded",
        "restore-on-frozen-server-mounted-nothing",
        "remove-on-frozen-unmounted",
        "remove-ended-hung-reader",
        "no-stuck-processes-after-remove",
        "qc-k3-thawed",
        "knfsd-reexport-fsid-2",
        "qc-k3-stale",
        "qc-k3-stale-says-the-export's-file-handle-is-stale",
        "status-k3-stale-verdict",
        "recover-k3-stale",
        "read-k3-after-stale-recover",
        "qc-k3-after-stale",
        "qc-k42-stale",
        "qc-k42-stale-says-the-export's-file-handle-is-stale",
        "status-k42-stale-verdict",
        "recover-k42-stale",
        "read-k42-after-stale-recover",
        "qc-k42-after-stale",
        "restore-k3-v4only",
        "v4only-v3-mounted-nothing",
        "qc-k3-v4only-says-offers-only-NFSv4",
        "qc-k3-v4only-not-silent",
        "status-k3-v4only-verdict",
        "restore-k4-v41only",
        "restore-k40-v41only",
        "probe-v41only-as-40",
        "no42-version-4-is-4.1",
        "knfsd-start-v3only",
        "absurd-server-listening",
        "probe-absurd",
        "probe-absurd-bounded",
        "probe-absurd-says-malformed-reply",
        "restore-kx-absurd",
        "restore-kx-absurd-bounded",
        "restore-kx-absurd-says-server-sent-a-malformed-reply",
        "restore-kx4-absurd",
        "restore-kx4-absurd-bounded",
        "restore-kx4-absurd-says-server-sent-a-malformed-reply",
        "absurd-mounted-nothing",
        "probe-v3only",
        "probe-v3only-says-answers-NFS-v3-NULL",
        "probe-v3only-not-silent",
        "probe-v3only-export",
        "all-unmounted",
    ]);
}
