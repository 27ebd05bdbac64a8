//! Every `unsafe` block of the crate: `fork(2)` for the throw-away children
//! that touch the NFS mount, the raw system calls those children make,
//! `pidfd_open(2)`, which lets the parent sleep until a child ends, and
//! `poll(2)` on the raw descriptors the probe executor waits for.
//!
//! Why children: a system call on a `hard` NFS mount whose server is gone
//! blocks in the kernel until the server comes back. A thread stuck that way
//! keeps the whole process alive (its parent, LifeKeeper, would wait forever),
//! while a stuck *child* can simply be abandoned: the checker exits on time and
//! the child is re-parented to init. The children only call async-signal-safe
//! functions on data prepared before the fork (no allocation, no locks), which
//! is what makes `fork` in a possibly multi-threaded process sound.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::unistd::Pid;

/// What a child does; every variant only holds pointers prepared by the parent.
pub(crate) enum ChildOp<'a> {
    /// `statfs` then `stat` of the path (statfs is never answered from a cache).
    Stat(&'a CStr),
    /// As `Stat`, then open the directory and read one batch of entries.
    Read(&'a CStr),
    /// `mount(2)`.
    Mount {
        source: &'a CStr,
        target: &'a CStr,
        fstype: &'a CStr,
        flags: libc::c_ulong,
        data: &'a CStr,
    },
    /// `umount2(2)`.
    Umount {
        target: &'a CStr,
        flags: libc::c_int,
    },
}

/// Fork a child that performs `op` and exits with 0 on success or the errno
/// (clamped to 1..=255) of the first failing call.
pub(crate) fn spawn(op: &ChildOp<'_>) -> io::Result<Pid> {
    // An ignored SIGCHLD (inherited across exec from a parent that set it) makes the kernel
    // reap children at once: waitpid would answer ECHILD and a healthy check would look
    // failed. Our children must stay waitable.
    // SAFETY: SIG_DFL installs no handler, so no code runs in signal context.
    unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGCHLD,
            nix::sys::signal::SigHandler::SigDfl,
        )
    }?;
    // SAFETY: the child branch below only makes raw system calls on pointers
    // that were created before the fork and ends with `_exit`; it never
    // returns into Rust code that could take a lock or allocate.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        let code = run_child(op);
        // SAFETY: `_exit` is async-signal-safe and never returns.
        unsafe { libc::_exit(code) };
    }
    Ok(Pid::from_raw(pid))
}

/// `poll(2)` on raw descriptors (a closed one reports POLLNVAL, harmlessly):
/// how many are ready, 0 when the timeout (ms) passed first.
pub(crate) fn poll_fds(fds: &[(RawFd, libc::c_short)], timeout_ms: i32) -> io::Result<usize> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, events)| libc::pollfd {
            fd,
            events,
            revents: 0,
        })
        .collect();
    // SAFETY: `pfds` is a valid, writable array of `pfds.len()` pollfd structs for the
    // duration of the call; poll only reads the descriptors' numbers.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// A descriptor that becomes readable when process `pid` ends (Linux 5.3+;
/// older kernels answer ENOSYS and callers poll `waitpid` instead).
pub(crate) fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = libc::c_int::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn errno_code() -> libc::c_int {
    // SAFETY: `__errno_location` returns the calling thread's errno slot,
    // valid for the lifetime of the thread.
    let e = unsafe { *libc::__errno_location() };
    e.clamp(1, 255)
}

fn run_child(op: &ChildOp<'_>) -> libc::c_int {
    match op {
        ChildOp::Stat(path) => stat_path(path),
        ChildOp::Read(path) => {
            let rc = stat_path(path);
            if rc != 0 {
                return rc;
            }
            read_dir(path)
        }
        ChildOp::Mount {
            source,
            target,
            fstype,
            flags,
            data,
        } => {
            // SAFETY: all pointers are NUL-terminated strings owned by the
            // parent's stack frame, which the child's copy of memory keeps.
            let rc = unsafe {
                libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    fstype.as_ptr(),
                    *flags,
                    data.as_ptr().cast(),
                )
            };
            if rc == 0 { 0 } else { errno_code() }
        }
        ChildOp::Umount { target, flags } => {
            // SAFETY: `target` is a valid NUL-terminated string.
            let rc = unsafe { libc::umount2(target.as_ptr(), *flags) };
            if rc == 0 { 0 } else { errno_code() }
        }
    }
}

fn stat_path(path: &CStr) -> libc::c_int {
    // SAFETY: zeroed `statfs`/`stat` are valid out-parameters; `path` is a
    // valid NUL-terminated string.
    unsafe {
        let mut sfs: libc::statfs = std::mem::zeroed();
        if libc::statfs(path.as_ptr(), &mut sfs) != 0 {
            return errno_code();
        }
        let mut st: libc::stat = std::mem::zeroed();
        if libc::stat(path.as_ptr(), &mut st) != 0 {
            return errno_code();
        }
    }
    0
}

fn read_dir(path: &CStr) -> libc::c_int {
    let mut buf = [0u8; 4096];
    // SAFETY: `path` is a valid C string; `buf` is a writable buffer of the
    // length passed; the descriptor is closed before returning.
    unsafe {
        let fd = libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return errno_code();
        }
        let n = libc::syscall(
            libc::SYS_getdents64,
            fd,
            buf.as_mut_ptr().cast::<libc::c_void>(),
            buf.len(),
        );
        let code = if n < 0 { errno_code() } else { 0 };
        libc::close(fd);
        code
    }
}
