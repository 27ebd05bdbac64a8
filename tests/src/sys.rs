//! The crate's only unsafe code.

#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the child get SIGKILL when the thread that spawns it ends, so a QEMU never outlives a
/// test process that was killed (the harness kills it itself in every other case).
pub(crate) fn kill_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec; it only calls prctl(2),
    // which is async-signal-safe, and touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
