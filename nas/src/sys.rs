//! Every `unsafe` block of the crate: `fork(2)` for the throw-away children
//! that touch the NFS mount, the raw system calls those children make,
//! `pidfd_open(2)`, which lets the parent sleep until a child ends,
//! `pidfd_send_signal(2)` on a pinned `/proc/PID` directory, `statx(2)` for
//! the mount a path is on, and `poll(2)` on the raw descriptors the probe
//! executor waits for.
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
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::unistd::Pid;

/// What a child does; every variant only holds pointers prepared by the parent.
pub(crate) enum ChildOp<'a> {
    /// `statfs` then `stat` of the path (statfs is never answered from a cache).
    Stat(&'a CStr),
    /// As `Stat`, then open the directory and read one batch of entries.
    Read(&'a CStr),
    /// `mount(2)` on one directory named by identity: walk from `/` through `parents`
    /// refusing every symbolic link ([`walk`]), open `last` in the directory reached without
    /// following it, check that it is the directory the caller saw (`dir`: device and inode;
    /// else `EXDEV`) and that nothing is mounted on it (else `EBUSY`: never a second mount
    /// stacked on one), and mount on that pinned directory (`/proc/self/fd/N`).
    Mount {
        parents: &'a [&'a CStr],
        last: &'a CStr,
        dir: ((u32, u32), u64),
        source: &'a CStr,
        fstype: &'a CStr,
        flags: libc::c_ulong,
        data: &'a CStr,
    },
    /// `umount2(2)` of one mount named by identity: walk from `/` through
    /// `parents` refusing every symbolic link, open `last` in the directory
    /// reached without following it, check that it is the root of mount `mnt_id`
    /// (kernels before 5.8 report no mount id: device `dev` then), and unmount
    /// `last` relative to that pinned directory with `UMOUNT_NOFOLLOW`. A path
    /// that leads elsewhere ends with `EXDEV` and nothing is unmounted. With `ns`, all of
    /// it happens in that mount namespace (`setns(2)` first, which also makes its root the
    /// child's root); a mount the kernel will not unmount there (locked, as copies in a
    /// namespace of another user namespace are) ends with `EPERM`.
    UmountMount {
        ns: Option<RawFd>,
        parents: &'a [&'a CStr],
        last: &'a CStr,
        mnt_id: u64,
        dev: (u32, u32),
        flags: libc::c_int,
    },
}

/// Linux UAPI values the libc crate does not carry for every target.
const STATX_MNT_ID: u32 = 0x1000;
const AT_STATX_DONT_SYNC: libc::c_int = 0x4000;
const AT_NO_AUTOMOUNT: libc::c_int = 0x800;
const UMOUNT_NOFOLLOW: libc::c_int = 8;

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
        // before the descriptors go: the namespace to act in is one of them
        if let ChildOp::UmountMount { ns: Some(fd), .. } = op {
            // SAFETY: setns takes a descriptor and a flag; on failure the child exits with the
            // errno through the async-signal-safe `_exit`.
            unsafe {
                if libc::setns(*fd, libc::CLONE_NEWNS) != 0 {
                    libc::_exit(errno_code());
                }
            }
        }
        detach_descriptors();
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

/// `pidfd_send_signal(2)` on a pidfd or a `/proc/PID` directory descriptor:
/// the signal reaches that process or none (`ESRCH` once it has ended, even if
/// its pid is in use again). `ENOSYS` before Linux 5.1.
pub(crate) fn pidfd_send_signal(fd: BorrowedFd<'_>, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: the descriptor is open for the duration of the call; a null siginfo and zero
    // flags are what the call documents for a plain kill.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The mount id (`None` on kernels before 5.8) and device of what `path`
/// leads to, following symbolic links (also `/proc` magic links), without
/// asking an NFS server for fresh attributes and without triggering an automount.
pub(crate) fn mount_of(path: &CStr) -> io::Result<(Option<u64>, (u32, u32))> {
    // SAFETY: a zeroed statx is a valid out-parameter; `path` is NUL-terminated and `stx`
    // outlives the call.
    let (rc, stx) = unsafe {
        let mut stx: libc::statx = std::mem::zeroed();
        let rc = libc::syscall(
            libc::SYS_statx,
            libc::AT_FDCWD,
            path.as_ptr(),
            AT_STATX_DONT_SYNC | AT_NO_AUTOMOUNT,
            STATX_MNT_ID,
            &mut stx as *mut libc::statx,
        );
        (rc, stx)
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let id = (stx.stx_mask & STATX_MNT_ID != 0).then_some(stx.stx_mnt_id);
    Ok((id, (stx.stx_dev_major, stx.stx_dev_minor)))
}

/// In a fresh child, before anything can block: `/dev/null` on 0, 1 and 2 and
/// every other descriptor closed, so an abandoned child holds nothing of its
/// caller's (a pipe a caller reads to its end, a syslog socket, a lock).
fn detach_descriptors() {
    // SAFETY: plain system calls on integers and a static NUL-terminated path; nothing
    // here allocates or takes a lock (we are in a child of a possibly multi-threaded parent).
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for fd in 0..3 {
            if null < 0 {
                libc::close(fd);
            } else if null != fd {
                libc::dup2(null, fd);
            }
        }
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
            // before Linux 5.9: close them one by one, up to the descriptor limit
            let mut lim: libc::rlimit = std::mem::zeroed();
            let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                lim.rlim_cur.min(1 << 20) as libc::c_int
            } else {
                1024
            };
            for fd in 3..max {
                libc::close(fd);
            }
        }
    }
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
            parents,
            last,
            dir,
            source,
            fstype,
            flags,
            data,
        } => mount_at(parents, last, *dir, source, fstype, *flags, data),
        ChildOp::UmountMount {
            ns,
            parents,
            last,
            mnt_id,
            dev,
            flags,
        } => match umount_mount(parents, last, *mnt_id, *dev, *flags) {
            // the path led to the mount (checked by id): refused means locked in its namespace
            libc::EINVAL if ns.is_some() => libc::EPERM,
            code => code,
        },
    }
}

/// Walks from `/` through `parents`, each one opened `O_PATH|O_DIRECTORY|O_NOFOLLOW` in the
/// one before it, so no symbolic link anywhere is followed and nothing a path names can change
/// under the walk; with `create`, a missing component is made first (`mkdirat`, that mode).
/// Returns the last directory's descriptor, or the index of the component that failed and the
/// errno (`ENOTDIR` for a link or a file in the way). Only raw system calls: children call it
/// after `fork`.
pub(crate) fn walk(
    parents: &[&CStr],
    create: Option<libc::mode_t>,
) -> Result<RawFd, (usize, libc::c_int)> {
    let step = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: plain system calls on NUL-terminated strings the caller owns and on integers;
    // every descriptor but the one returned is closed.
    unsafe {
        let mut dir = libc::open(c"/".as_ptr(), step);
        if dir < 0 {
            return Err((0, errno_code()));
        }
        for (i, c) in parents.iter().enumerate() {
            let mut next = libc::openat(dir, c.as_ptr(), step);
            if next < 0
                && let Some(mode) = create
                && *libc::__errno_location() == libc::ENOENT
                && (libc::mkdirat(dir, c.as_ptr(), mode) == 0
                    || *libc::__errno_location() == libc::EEXIST)
            {
                next = libc::openat(dir, c.as_ptr(), step);
            }
            if next < 0 {
                let e = errno_code();
                libc::close(dir);
                return Err((i, e));
            }
            libc::close(dir);
            dir = next;
        }
        Ok(dir)
    }
}

/// [`walk`] for the parent process: the descriptor owned.
pub(crate) fn walk_owned(
    parents: &[&CStr],
    create: Option<libc::mode_t>,
) -> Result<OwnedFd, (usize, libc::c_int)> {
    let fd = walk(parents, create)?;
    // SAFETY: `walk` returns a descriptor it just opened and nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What `statx(2)` says of a file without asking a network file system for fresh attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stx {
    /// `S_IFMT` bits of the mode.
    pub kind: u32,
    pub dev: (u32, u32),
    pub ino: u64,
    /// `None` before Linux 5.8.
    pub mnt_id: Option<u64>,
}

/// `statx(2)` of `name` in directory `dir` (`""`: `dir` itself), never following a symbolic
/// link, without syncing attributes (`AT_STATX_DONT_SYNC`: no server is asked) or triggering
/// an automount. Only raw system calls.
pub(crate) fn stat_at(dir: RawFd, name: &CStr) -> Result<Stx, libc::c_int> {
    // SAFETY: a zeroed statx is a valid out-parameter; `name` is NUL-terminated and `stx`
    // outlives the call.
    unsafe {
        let mut stx: libc::statx = std::mem::zeroed();
        let empty = if name.is_empty() {
            libc::AT_EMPTY_PATH
        } else {
            0
        };
        let rc = libc::syscall(
            libc::SYS_statx,
            dir,
            name.as_ptr(),
            empty | libc::AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC | AT_NO_AUTOMOUNT,
            libc::STATX_TYPE | libc::STATX_INO | STATX_MNT_ID,
            &mut stx as *mut libc::statx,
        );
        if rc != 0 {
            return Err(errno_code());
        }
        Ok(Stx {
            kind: u32::from(stx.stx_mode) & libc::S_IFMT,
            dev: (stx.stx_dev_major, stx.stx_dev_minor),
            ino: stx.stx_ino,
            mnt_id: (stx.stx_mask & STATX_MNT_ID != 0).then_some(stx.stx_mnt_id),
        })
    }
}

/// `/proc/self/fd/N` for descriptor `fd`, written into `buf` without allocating.
fn fd_path(fd: RawFd, buf: &mut [u8; 32]) -> &CStr {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 10];
    let (mut n, mut len) = (fd.unsigned_abs(), 0);
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[PREFIX.len() + i] = digits[len - 1 - i];
    }
    buf[PREFIX.len() + len] = 0;
    CStr::from_bytes_until_nul(&buf[..]).unwrap_or(c"/")
}

fn mount_at(
    parents: &[&CStr],
    last: &CStr,
    want: ((u32, u32), u64),
    source: &CStr,
    fstype: &CStr,
    flags: libc::c_ulong,
    data: &CStr,
) -> libc::c_int {
    let dir = match walk(parents, None) {
        Ok(d) => d,
        Err((_, e)) => return e,
    };
    // SAFETY: raw system calls on integers and NUL-terminated strings the parent prepared (the
    // child's copy of its memory keeps them); the path buffer lives on this stack.
    unsafe {
        let t = libc::openat(
            dir,
            last.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        );
        if t < 0 {
            return errno_code();
        }
        let (Ok(at), Ok(above)) = (stat_at(t, c""), stat_at(dir, c"")) else {
            return libc::EIO;
        };
        if (at.dev, at.ino) != want {
            return libc::EXDEV;
        }
        // something mounted on it already: its root is another mount (device, before 5.8)
        let covered = match (at.mnt_id, above.mnt_id) {
            (Some(a), Some(b)) => a != b,
            _ => at.dev != above.dev,
        };
        if covered {
            return libc::EBUSY;
        }
        let mut buf = [0u8; 32];
        let target = fd_path(t, &mut buf);
        let rc = libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        );
        if rc == 0 { 0 } else { errno_code() }
    }
}

fn umount_mount(
    parents: &[&CStr],
    last: &CStr,
    mnt_id: u64,
    dev: (u32, u32),
    flags: libc::c_int,
) -> libc::c_int {
    let dir = match walk(parents, None) {
        Ok(d) => d,
        Err((_, e)) => return e,
    };
    // SAFETY: every pointer is a NUL-terminated string prepared by the parent (the child's copy
    // of its memory keeps them); `stx` is a zeroed out-parameter on this stack; descriptors
    // are plain integers, and the child exits right after, closing any left open.
    unsafe {
        let t = libc::openat(
            dir,
            last.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        );
        if t < 0 {
            return errno_code();
        }
        let mut stx: libc::statx = std::mem::zeroed();
        let rc = libc::syscall(
            libc::SYS_statx,
            t,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | AT_STATX_DONT_SYNC | AT_NO_AUTOMOUNT,
            STATX_MNT_ID,
            &mut stx as *mut libc::statx,
        );
        if rc != 0 {
            return errno_code();
        }
        // the open descriptor would make the mount busy: only the directory above stays pinned
        libc::close(t);
        let same = if stx.stx_mask & STATX_MNT_ID != 0 {
            stx.stx_mnt_id == mnt_id
        } else {
            (stx.stx_dev_major, stx.stx_dev_minor) == dev
        };
        if !same {
            return libc::EXDEV;
        }
        if libc::fchdir(dir) != 0 {
            return errno_code();
        }
        libc::close(dir);
        if libc::umount2(last.as_ptr(), flags | UMOUNT_NOFOLLOW) == 0 {
            0
        } else {
            errno_code()
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
