//! The `demo` binary tells its failover story to the end (exit 0) in the test guest.

use std::process::Command;

use tests::vm;

#[test]
fn demo_story_holds() {
    // The same reasons the other VM tests skip for: no QEMU, or (like bed_nfs_vm) no root for the
    // NFS server's network namespace.
    let unavailable = match vm::parts() {
        Err(vm::VmError::Unavailable(why)) => Some(why),
        _ if !nix::unistd::geteuid().is_root() => {
            Some("the demo's NFS server needs root (network namespaces)".to_string())
        }
        _ => None,
    };
    if let Some(why) = unavailable
        && !vm::vm_required()
    {
        vm::skip_loudly("demo", &why);
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_demo"))
        .output()
        .expect("run demo");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "demo failed: {}", out.status);
    assert!(text.contains("VERDICT: PASS"), "no PASS verdict");
}
