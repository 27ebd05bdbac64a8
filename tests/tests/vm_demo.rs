//! The `demo` binary tells its failover story to the end (exit 0) in the test guest.

use std::process::Command;

use tests::vm;

#[test]
fn demo_story_holds() {
    if let Err(vm::VmError::Unavailable(why)) = vm::parts()
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
