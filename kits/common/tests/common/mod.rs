//! What the contract and OCF tests share: the toy kit's path and output helpers.

use std::path::PathBuf;
use std::process::Output;

/// The `toy-kit` example, which `cargo test` builds next to the test binaries.
pub fn toy() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join("examples/toy-kit");
    assert!(
        p.exists(),
        "{} missing: run through `cargo test`, which builds examples",
        p.display()
    );
    p
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
