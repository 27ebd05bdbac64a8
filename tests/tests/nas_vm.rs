//! lkh-nas in a guest kernel against a real NFS server (the harness's nfs-ganesha on the host,
//! v3 and v4): restore/quickCheck/remove/recover, bad input, server stopped and frozen under
//! hard mounts, a process holding the mount, remove on a dead server's mount. One boot runs
//! the whole scenario (`guest/nas_vm.sh`); each check there is one line of the proof.

use std::time::Duration;

use tests::vm::{self, NfsServer, Vm, VmError};

#[test]
fn nas_kit_in_a_guest() {
    let nfs = match NfsServer::start() {
        Ok(s) => s,
        Err(VmError::Unavailable(why)) if !vm::vm_required() => {
            eprintln!("SKIPPED nas_vm: {why}");
            return;
        }
        Err(e) => panic!("nfs server: {e}"),
    };
    std::fs::write(nfs.export_dir().join("hello.txt"), "hello-from-host\n").expect("export file");
    let vm = Vm::new("nas_vm")
        .nfs(&nfs)
        .project_bins()
        .script_file("guest/nas_vm.sh")
        .timeout(Duration::from_secs(240));
    let Some(out) = vm::run_or_skip(&vm) else {
        return;
    };
    out.assert_passed(&[
        "restore-v3",
        "restore-v4",
        "mountinfo-v3",
        "mountinfo-v4",
        "qc-v3-healthy",
        "qc-v4-healthy",
        "bad-input-mounted-nothing",
        "restore-busy",
        "remove-ended-cwd-user",
        "remove-ended-fd-user",
        "remove-unmounted-v3",
        "qc-v3-stopped-bounded",
        "qc-v4-stopped-bounded",
        "recover-v3-back",
        "recover-remounted-v3",
        "qc-v3-frozen-bounded",
        "qc-v3-frozen-again-bounded",
        "no-stuck-checkers",
        "remove-v4-dead-bounded",
        "remove-on-dead-server-unmounted",
        "qc-v3-thawed",
        "all-unmounted",
    ]);
}
