//! The crate's only `unsafe` code: the CPUID instruction, and keeping a descriptor open
//! across the `exec` of a child (`check-lifekeeper` runs the very file it judged).
//!
//! Decoding what CPUID returns (the hypervisor bit, the vendor signatures)
//! is in [`crate::cpuid`], which takes this function or a captured
//! register dump alike. Only meaningful on the machine we run on, so
//! callers skip it when inspecting a sysroot.
//!
//! `__cpuid` is an `unsafe fn` in older toolchains and a safe one in
//! current ones (rustc 1.95 reports the block as unnecessary); the block
//! stays, with `allow(unused_unsafe)`, so the crate builds on both.
#![allow(unsafe_code)]

use crate::cpuid::Regs;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Clears the close-on-exec flag of `fd` in `cmd`'s child only (never in this process, where
/// another thread's child could inherit it), so the child can `exec /proc/self/fd/<fd>`: the
/// kernel runs the open file itself, and a script's interpreter opens that same path after the
/// exec. The caller keeps `fd` open until the child has started.
pub fn keep_across_exec(cmd: &mut Command, fd: RawFd) {
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes one `fcntl` call on a descriptor the
    // parent holds open, allocates nothing and takes no lock (`last_os_error` only reads errno).
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Executes CPUID for `leaf` (sub-leaf 0). `None` on architectures
/// without CPUID.
#[cfg(target_arch = "x86_64")]
pub fn cpuid(leaf: u32) -> Option<Regs> {
    use core::arch::x86_64::__cpuid;
    // SAFETY: CPUID exists on every x86_64 CPU and never faults: a leaf
    // beyond the CPU's (or the hypervisor's) range returns some other
    // leaf's data or zeros, which the caller validates. The instruction
    // only writes the four registers it returns.
    #[allow(unused_unsafe)]
    let r = unsafe { __cpuid(leaf) };
    Some(Regs {
        eax: r.eax,
        ebx: r.ebx,
        ecx: r.ecx,
        edx: r.edx,
    })
}

/// Executes CPUID for `leaf` (sub-leaf 0). `None` on architectures
/// without CPUID.
#[cfg(not(target_arch = "x86_64"))]
pub fn cpuid(_leaf: u32) -> Option<Regs> {
    None
}
