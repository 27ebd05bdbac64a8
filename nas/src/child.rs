//! System calls that may block forever on a dead `hard` mount run in a
//! forked child that the parent abandons at its deadline.
//!
//! An abandoned child is sent SIGKILL (NFS waits are killable on current
//! kernels, so it usually dies at once). One that does not die is recorded in
//! a marker file (`pid starttime`); the next IO check finds it still alive
//! and answers "wedged" at once instead of forking another child, so
//! repeated checks never pile up stuck processes.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

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
const REAP_GRACE: Duration = Duration::from_millis(150);

fn cstr(what: &str, s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

/// Poll `waitpid` until the child ends or `until` passes: how the call ended
/// (the child's exit status is 0 or the errno). A child killed by a signal
/// someone else sent (the OOM killer, an operator) counts as interrupted.
fn wait_until(pid: Pid, until: Instant) -> io::Result<Option<Result<(), Errno>>> {
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
        sleep(nap.min(until - now));
        nap = (nap * 2).min(Duration::from_millis(10));
    }
}

fn run(op: &ChildOp<'_>, deadline: Instant) -> io::Result<ChildEnd> {
    let pid = sys::spawn(op)?;
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

/// `mount(2)` in a child, bounded by `deadline`.
pub fn mount(
    source: &str,
    target: &str,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
    deadline: Instant,
) -> io::Result<ChildEnd> {
    let (s, t, f, d) = (
        cstr("source", source)?,
        cstr("target", target)?,
        cstr("fstype", fstype)?,
        cstr("options", data)?,
    );
    run(
        &ChildOp::Mount {
            source: &s,
            target: &t,
            fstype: &f,
            flags,
            data: &d,
        },
        deadline,
    )
}

/// `umount2(2)` in a child, bounded by `deadline`.
pub fn umount(target: &str, flags: libc::c_int, deadline: Instant) -> io::Result<ChildEnd> {
    let t = cstr("target", target)?;
    run(&ChildOp::Umount { target: &t, flags }, deadline)
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
    Ok(Duration),
    /// The call returned an error (e.g. EIO on a soft mount, ESTALE).
    Failed(Errno),
    /// No answer by the deadline; the child was killed.
    TimedOut,
    /// A check child is stuck in the kernel (`pid`); `earlier` when it was
    /// left by a previous check (no new child was started).
    Stuck {
        pid: i32,
        earlier: bool,
    },
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

/// A stuck child recorded by an earlier check, if it is still alive.
pub fn stuck_child(marker: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(marker).ok()?;
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
    if let Some(pid) = stuck_child(marker) {
        return Ok(IoOutcome::Stuck { pid, earlier: true });
    }
    let path = cstr("mount point", mount_point)?;
    let op = match mode {
        IoCheck::None => return Ok(IoOutcome::Ok(Duration::ZERO)),
        IoCheck::Stat => ChildOp::Stat(&path),
        IoCheck::Read => ChildOp::Read(&path),
    };
    let t0 = Instant::now();
    Ok(match run(&op, deadline)? {
        ChildEnd::Done(Ok(())) => IoOutcome::Ok(t0.elapsed()),
        ChildEnd::Done(Err(e)) => IoOutcome::Failed(e),
        ChildEnd::TimedOutKilled => IoOutcome::TimedOut,
        ChildEnd::Stuck(pid) => {
            let raw = pid.as_raw();
            if let Some(st) = start_time(raw) {
                if let Some(dir) = marker.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(marker, format!("{raw} {st}\n"))?;
            }
            IoOutcome::Stuck {
                pid: raw,
                earlier: false,
            }
        }
    })
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
    fn stale_marker_is_ignored_and_removed() {
        let m = std::env::temp_dir().join(format!("nas-test-stale-{}", std::process::id()));
        // our own pid with a wrong start time: not the recorded child
        std::fs::write(&m, format!("{} 1\n", std::process::id())).unwrap();
        assert_eq!(stuck_child(&m), None);
        assert!(!m.exists());
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
    fn umount_of_a_non_mount_reports_the_errno() {
        let d = Instant::now() + Duration::from_secs(5);
        let r = umount("/nonexistent-nas-test", 0, d).unwrap();
        assert_eq!(r, ChildEnd::Done(Err(Errno::ENOENT)));
    }
}
