//! System calls that may block forever on a dead `hard` mount run in a
//! forked child that the parent abandons at its deadline.
//!
//! An abandoned child is sent SIGKILL (NFS waits are killable on current
//! kernels, so it usually dies at once). One that does not die is recorded in
//! a marker file (`pid starttime`); the next IO check finds it still alive
//! and answers "wedged" at once instead of forking another child, so
//! repeated checks never pile up stuck processes.

use std::ffi::CStr;
use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::mountinfo::MountEntry;
use crate::sys::{self, ChildOp};

/// How a bounded child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEnd {
    /// The call returned: `Ok` or the errno it failed with.
    Done(Result<(), Errno>),
    /// Not done by the deadline; killed and reaped.
    TimedOutKilled,
    /// Not done by the deadline and still alive after SIGKILL (stuck in the kernel).
    Stuck(Pid),
}

/// Time kept back from the deadline to kill and reap a late child.
pub const REAP_GRACE: Duration = Duration::from_millis(150);

fn cstr(what: &str, s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

/// Wait until the child ends or `until` passes: how the call ended (the
/// child's exit status is 0 or the errno). A child killed by a signal someone
/// else sent (the OOM killer, an operator) counts as interrupted. Sleeps on a
/// pidfd, so the end is seen at once; without pidfds (kernels before 5.3) it
/// polls `waitpid` with growing naps.
fn wait_until(pid: Pid, until: Instant) -> io::Result<Option<Result<(), Errno>>> {
    let pidfd = sys::pidfd_open(pid).ok();
    let mut nap = Duration::from_micros(200);
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, 0)) => return Ok(Some(Ok(()))),
            Ok(WaitStatus::Exited(_, code)) => return Ok(Some(Err(Errno::from_raw(code)))),
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                log::debug!("child {pid} was killed by {sig}");
                return Ok(Some(Err(Errno::EINTR)));
            }
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let now = Instant::now();
        if now >= until {
            return Ok(None);
        }
        let left = until - now;
        match &pidfd {
            Some(fd) => {
                // round up: a poll that wakes early only costs another turn
                let ms = left.as_micros().div_ceil(1000).min(u128::from(u16::MAX));
                let ms = u16::try_from(ms).unwrap_or(u16::MAX);
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::from(ms)) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            None => {
                sleep(nap.min(left));
                nap = (nap * 2).min(Duration::from_millis(10));
            }
        }
    }
}

/// Wait for a started child until `deadline` (less the reaping grace), then
/// kill it and wait a little more.
fn reap(pid: Pid, deadline: Instant) -> io::Result<ChildEnd> {
    let soft = deadline.checked_sub(REAP_GRACE).unwrap_or(deadline);
    if let Some(end) = wait_until(pid, soft)? {
        return Ok(ChildEnd::Done(end));
    }
    let _ = kill(pid, Signal::SIGKILL);
    match wait_until(
        pid,
        deadline.max(Instant::now() + Duration::from_millis(20)),
    )? {
        Some(_) => Ok(ChildEnd::TimedOutKilled),
        None => Ok(ChildEnd::Stuck(pid)),
    }
}

fn run(op: &ChildOp<'_>, deadline: Instant) -> io::Result<ChildEnd> {
    reap(sys::spawn(op)?, deadline)
}

/// `mount(2)` in a child, bounded by `deadline`, on the directory at `target` that has device
/// and inode `dir` and nothing mounted on it: the path is walked from `/` without following
/// any symbolic link and the mount is made on the directory pinned at its end (see
/// `sys::ChildOp::Mount`), so a path a local user changes meanwhile never moves it elsewhere.
/// Ends with `EXDEV` when the path leads to another directory now, `EBUSY` when something is
/// mounted there, `ENOTDIR` when a link or a file is in the way.
pub fn mount(
    source: &str,
    target: &str,
    dir: ((u32, u32), u64),
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
    deadline: Instant,
) -> io::Result<ChildEnd> {
    let comps = components(Path::new(target))?;
    let Some((last, parents)) = comps.split_last() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "nothing is ever mounted on the root directory here",
        ));
    };
    let parents: Vec<&CStr> = parents.iter().map(CString::as_c_str).collect();
    let (s, f, d) = (
        cstr("source", source)?,
        cstr("fstype", fstype)?,
        cstr("options", data)?,
    );
    run(
        &ChildOp::Mount {
            parents: &parents,
            last,
            dir,
            source: &s,
            fstype: &f,
            flags,
            data: &d,
        },
        deadline,
    )
}

/// `umount2(2)` of the mount `m` and no other, in a child bounded by
/// `deadline`: its path (the exact bytes of mountinfo) is walked from `/`
/// refusing every symbolic link, the mount found there must carry `m`'s mount
/// id, and the unmount is done relative to the pinned directory above it with
/// `UMOUNT_NOFOLLOW`. Ends with `EXDEV` when the path now leads to another
/// mount, `ENOTDIR`/`ELOOP`/`ENOENT` when it no longer leads anywhere: a path
/// a local user renamed or replaced by a link never steers the unmount.
pub fn umount_mount(m: &MountEntry, flags: libc::c_int, deadline: Instant) -> io::Result<ChildEnd> {
    umount_mount_in(None, m, flags, deadline)
}

/// [`umount_mount`] in mount namespace `ns` (a pinned `/proc/PID/ns/mnt`) when given: `m` as
/// that namespace's mountinfo shows it, its path walked from that namespace's root. A mount
/// the kernel refuses to unmount there (locked: a copy in a namespace of another user
/// namespace) ends with `EPERM`.
pub fn umount_mount_in(
    ns: Option<BorrowedFd<'_>>,
    m: &MountEntry,
    flags: libc::c_int,
    deadline: Instant,
) -> io::Result<ChildEnd> {
    let comps = components(&m.path)?;
    let Some((last, parents)) = comps.split_last() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the root directory is never unmounted here",
        ));
    };
    let parents: Vec<&CStr> = parents.iter().map(CString::as_c_str).collect();
    run(
        &ChildOp::UmountMount {
            ns: ns.map(|fd| fd.as_raw_fd()),
            parents: &parents,
            last,
            mnt_id: u64::from(m.mount_id),
            dev: (m.major, m.minor),
            flags,
        },
        deadline,
    )
}

/// The components of an absolute path, each one a name (never `.` or `..`).
pub(crate) fn components(path: &Path) -> io::Result<Vec<CString>> {
    let bytes = path.as_os_str().as_bytes();
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("mount point {}: {why}", path.display()),
        )
    };
    if !bytes.starts_with(b"/") {
        return Err(bad("not an absolute path"));
    }
    bytes
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .map(|c| match c {
            b"." | b".." => Err(bad("has a . or .. component")),
            _ => CString::new(c).map_err(|_| bad("contains a NUL byte")),
        })
        .collect()
}

/// What IO_CHECK does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoCheck {
    None,
    /// `statfs` + `stat` of the mount point.
    Stat,
    /// `Stat` plus reading the mount point's directory entries.
    Read,
}

impl std::str::FromStr for IoCheck {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "none" => Ok(IoCheck::None),
            "stat" => Ok(IoCheck::Stat),
            "read" => Ok(IoCheck::Read),
            other => Err(format!("IO_CHECK={other:?}: use none, stat or read")),
        }
    }
}

impl fmt::Display for IoCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoCheck::None => "none",
            IoCheck::Stat => "stat",
            IoCheck::Read => "read",
        })
    }
}

/// Result of an IO check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoOutcome {
    /// The call returned; the time until the checker saw the child end (an
    /// upper bound when the checker was busy with the probe meanwhile).
    Ok(Duration),
    /// The call returned an error (e.g. EIO on a soft mount, ESTALE).
    Failed(Errno),
    /// No answer by the deadline; the child was killed.
    TimedOut,
    /// A check child is stuck in the kernel (`pid`); `earlier` when it was
    /// left by a previous check (no new child was started).
    Stuck { pid: i32, earlier: bool },
}

/// Start time (clock ticks after boot) of a live, non-zombie process: with the
/// pid, it names one process even after the pid is reused.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.get(s.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split(' ').collect();
    if f.first() == Some(&"Z") || f.first() == Some(&"X") {
        return None;
    }
    f.get(19)?.parse().ok()
}

/// Opening the marker never follows a link (the caller's directory is its own, but a link
/// planted there must not redirect a root write or read).
fn no_follow() -> std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .mode(0o600);
    o
}

/// Writes the marker whole or not at all: a private temporary file renamed over it.
fn write_marker(marker: &Path, text: &str) -> io::Result<()> {
    let mut tmp = marker.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut f = no_follow().write(true).create_new(true).open(&tmp)?;
    std::io::Write::write_all(&mut f, text.as_bytes())?;
    std::fs::rename(&tmp, marker)
}

/// A stuck child recorded by an earlier check, if it is still alive.
pub fn stuck_child(marker: &Path) -> Option<i32> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut no_follow().read(true).open(marker).ok()?, &mut text)
        .ok()?;
    let mut it = text.split_whitespace();
    let pid: i32 = it.next()?.parse().ok()?;
    let st: u64 = it.next()?.parse().ok()?;
    if start_time(pid) == Some(st) {
        Some(pid)
    } else {
        let _ = std::fs::remove_file(marker);
        None
    }
}

/// Stat (or read) `mount_point` in a child, bounded by `deadline`; `marker`
/// remembers a child that could not be killed.
pub fn io_check(
    mount_point: &str,
    mode: IoCheck,
    marker: &Path,
    deadline: Instant,
) -> io::Result<IoOutcome> {
    start_io_check(mount_point, mode, marker, deadline)?.finish()
}

/// An IO check under way: its child runs while the caller does other work
/// (the server probe), then [`IoCheckRun::finish`] waits for it.
#[derive(Debug)]
pub struct IoCheckRun(Run);

#[derive(Debug)]
enum Run {
    Done(IoOutcome),
    Child {
        pid: Pid,
        started: Instant,
        deadline: Instant,
        marker: PathBuf,
    },
}

/// Start the IO check of [`io_check`] without waiting for it.
pub fn start_io_check(
    mount_point: &str,
    mode: IoCheck,
    marker: &Path,
    deadline: Instant,
) -> io::Result<IoCheckRun> {
    if let Some(pid) = stuck_child(marker) {
        return Ok(IoCheckRun(Run::Done(IoOutcome::Stuck {
            pid,
            earlier: true,
        })));
    }
    let path = cstr("mount point", mount_point)?;
    let op = match mode {
        IoCheck::None => return Ok(IoCheckRun(Run::Done(IoOutcome::Ok(Duration::ZERO)))),
        IoCheck::Stat => ChildOp::Stat(&path),
        IoCheck::Read => ChildOp::Read(&path),
    };
    let started = Instant::now();
    Ok(IoCheckRun(Run::Child {
        pid: sys::spawn(&op)?,
        started,
        deadline,
        marker: marker.to_path_buf(),
    }))
}

impl IoCheckRun {
    /// Wait for the child until the deadline given at the start.
    pub fn finish(self) -> io::Result<IoOutcome> {
        let (pid, started, deadline, marker) = match self.0 {
            Run::Done(o) => return Ok(o),
            Run::Child {
                pid,
                started,
                deadline,
                marker,
            } => (pid, started, deadline, marker),
        };
        Ok(match reap(pid, deadline)? {
            ChildEnd::Done(Ok(())) => IoOutcome::Ok(started.elapsed()),
            ChildEnd::Done(Err(e)) => IoOutcome::Failed(e),
            ChildEnd::TimedOutKilled => IoOutcome::TimedOut,
            ChildEnd::Stuck(pid) => {
                let raw = pid.as_raw();
                if let Some(st) = start_time(raw) {
                    write_marker(&marker, &format!("{raw} {st}\n"))?;
                }
                IoOutcome::Stuck {
                    pid: raw,
                    earlier: false,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_of_a_local_directory_succeeds() {
        let d = Instant::now() + Duration::from_secs(5);
        let m = std::env::temp_dir().join(format!("nas-test-marker-{}", std::process::id()));
        let r = io_check("/tmp", IoCheck::Read, &m, d).unwrap();
        assert!(matches!(r, IoOutcome::Ok(_)), "{r:?}");
        let r = io_check("/nonexistent-nas-test", IoCheck::Stat, &m, d).unwrap();
        assert_eq!(r, IoOutcome::Failed(Errno::ENOENT));
    }

    #[test]
    fn a_started_check_runs_while_the_caller_works() {
        let d = Instant::now() + Duration::from_secs(5);
        let m = std::env::temp_dir().join(format!("nas-test-overlap-{}", std::process::id()));
        let run = start_io_check("/tmp", IoCheck::Stat, &m, d).unwrap();
        let bad = start_io_check("/nonexistent-nas-test", IoCheck::Read, &m, d).unwrap();
        sleep(Duration::from_millis(50));
        assert!(matches!(run.finish().unwrap(), IoOutcome::Ok(_)));
        assert_eq!(bad.finish().unwrap(), IoOutcome::Failed(Errno::ENOENT));
        assert!(!m.exists(), "no marker for checks that ended");
    }

    /// A parent that ignores SIGCHLD passes that on across exec; the kernel would then reap
    /// the check child itself and the check would fail with ECHILD. Runs itself again under
    /// `env --ignore-signal=CHLD`.
    #[test]
    fn an_inherited_ignored_sigchld_does_not_fail_the_check() {
        const INNER: &str = "NAS_TEST_SIGCHLD_IGNORED";
        let name = "child::tests::an_inherited_ignored_sigchld_does_not_fail_the_check";
        if std::env::var_os(INNER).is_some() {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let ign = status
                .lines()
                .find_map(|l| l.strip_prefix("SigIgn:"))
                .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
                .unwrap();
            assert!(
                ign & (1 << (libc::SIGCHLD - 1)) != 0,
                "SIGCHLD is not ignored here"
            );
            let d = Instant::now() + Duration::from_secs(5);
            let m = std::env::temp_dir().join(format!("nas-test-sigchld-{}", std::process::id()));
            let r = io_check("/tmp", IoCheck::Stat, &m, d).unwrap();
            assert!(matches!(r, IoOutcome::Ok(_)), "{r:?}");
            return;
        }
        crate::rerun_test_under(&["env", "--ignore-signal=CHLD"], name, INNER);
    }

    #[test]
    fn stale_marker_is_ignored_and_removed() {
        let m = std::env::temp_dir().join(format!("nas-test-stale-{}", std::process::id()));
        // our own pid with a wrong start time: not the recorded child
        std::fs::write(&m, format!("{} 1\n", std::process::id())).unwrap();
        assert_eq!(stuck_child(&m), None);
        assert!(!m.exists());
    }

    /// A link planted as the marker is neither read through nor written through.
    #[test]
    fn marker_links_are_not_followed() {
        let d = std::env::temp_dir().join(format!("nas-test-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).unwrap();
        let (m, target) = (d.join("iocheck"), d.join("target"));
        let me = std::process::id() as i32;
        std::fs::write(&target, format!("{me} {}\n", start_time(me).unwrap())).unwrap();
        std::os::unix::fs::symlink(&target, &m).unwrap();
        assert_eq!(stuck_child(&m), None, "read through the link");
        write_marker(&m, "1 2\n").unwrap();
        assert!(!std::fs::symlink_metadata(&m).unwrap().is_symlink());
        assert!(
            std::fs::read_to_string(&target)
                .unwrap()
                .starts_with(&me.to_string())
        );
        assert_eq!(std::fs::read_to_string(&m).unwrap(), "1 2\n");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn live_marker_short_circuits_the_check() {
        let m = std::env::temp_dir().join(format!("nas-test-live-{}", std::process::id()));
        let me = std::process::id() as i32;
        std::fs::write(&m, format!("{me} {}\n", start_time(me).unwrap())).unwrap();
        let d = Instant::now() + Duration::from_secs(5);
        let r = io_check("/tmp", IoCheck::Stat, &m, d).unwrap();
        assert_eq!(
            r,
            IoOutcome::Stuck {
                pid: me,
                earlier: true
            }
        );
        std::fs::remove_file(&m).unwrap();
    }

    #[test]
    fn umount_of_a_missing_path_reports_the_errno() {
        let d = Instant::now() + Duration::from_secs(5);
        let m =
            crate::mountinfo::parse("90 1 0:99 / /nonexistent-nas-test rw - tmpfs t rw\n").unwrap();
        let r = umount_mount(&m[0], 0, d).unwrap();
        assert_eq!(r, ChildEnd::Done(Err(Errno::ENOENT)));
    }
}
