//! Which processes use a mount, found by walking `/proc` — never `fuser`,
//! which stats every open file and so hangs on any dead NFS mount.
//!
//! Only symbolic links are read (`readlink` of `cwd`, `root`, `exe`, `fd/*`
//! returns the kernel's path string without touching the file system behind
//! it) and `maps` is read as text. A process uses the mount if a path is the
//! mount point or below it, or if a mapping's device number is the mount's.
//!
//! A process stuck *inside* a path system call on a dead mount (an `open` or
//! `stat` waiting for the server) holds no descriptor yet. For those,
//! `/proc/PID/task/TID/syscall` gives each thread's blocked call and its
//! arguments, and the path argument is read from the process's memory
//! (`/proc/PID/mem`), so they are found as well, whichever thread is stuck
//! (x86_64 system call numbers).

use std::fs;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::child::start_time;

/// A process holding the mount, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub pid: i32,
    /// Start time in clock ticks after boot: only this process is signalled,
    /// never another that got the pid after it ended.
    pub start: u64,
    pub comm: String,
    /// e.g. `cwd`, `fd 3`, `maps`.
    pub how: Vec<String>,
}

fn under(path: &str, mount_point: &str) -> bool {
    let p = path.strip_suffix(" (deleted)").unwrap_or(path);
    p == mount_point
        || p.strip_prefix(mount_point)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn link(p: &Path) -> Option<String> {
    fs::read_link(p)
        .ok()
        .map(|t| t.to_string_lossy().into_owned())
}

/// Does a `/proc/PID/maps` text map a file of the mount?
fn maps_use(maps: &str, mount_point: &str, dev: Option<(u32, u32)>) -> bool {
    let dev_s = dev.map(|(ma, mi)| format!("{ma:02x}:{mi:02x}"));
    maps.lines().any(|l| {
        let mut f = l.split_whitespace();
        let (_, _, _, d, ino) = (f.next(), f.next(), f.next(), f.next(), f.next());
        let path: String = f.collect::<Vec<_>>().join(" ");
        ino.is_some_and(|i| i != "0")
            && (dev_s.as_deref().is_some_and(|ds| d == Some(ds)) || under(&path, mount_point))
    })
}

/// All processes (except this one) using `mount_point` or anything below
/// it; `dev` is the mount's device number from mountinfo.
pub fn find(mount_point: &str, dev: Option<(u32, u32)>) -> Vec<User> {
    let me = std::process::id() as i32;
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut users = Vec::new();
    for ent in dir.flatten() {
        let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let base = ent.path();
        let mut how = Vec::new();
        for what in ["cwd", "root", "exe"] {
            if link(&base.join(what)).is_some_and(|t| under(&t, mount_point)) {
                how.push(what.to_string());
            }
        }
        if let Ok(fds) = fs::read_dir(base.join("fd")) {
            for fd in fds.flatten() {
                if link(&fd.path()).is_some_and(|t| under(&t, mount_point)) {
                    how.push(format!("fd {}", fd.file_name().to_string_lossy()));
                }
            }
        }
        if fs::read_to_string(base.join("maps")).is_ok_and(|m| maps_use(&m, mount_point, dev)) {
            how.push("maps".to_string());
        }
        if let Some(p) = blocked_paths(&base)
            .into_iter()
            .find(|p| under(p, mount_point))
        {
            how.push(format!("blocked in a system call on {p}"));
        }
        // a zombie or a process gone meanwhile holds nothing any more
        if !how.is_empty()
            && let Some(start) = start_time(pid)
        {
            let comm = fs::read_to_string(base.join("comm"))
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            users.push(User {
                pid,
                start,
                comm,
                how,
            });
        }
    }
    users
}

/// [`find`] on a thread abandoned at `until`: `None` if it did not finish.
///
/// Reading `/proc/PID/maps` or `/proc/PID/mem` waits for that process's
/// memory-map lock, which a thread of it can hold while stuck on the dead
/// mount (e.g. in a write fault on a mapped file), and `mem` may page in from
/// the mount itself. Such a wait is killable, so the thread ends with the
/// process; the caller goes on without the list (forced unmount releases the
/// stuck calls).
pub fn find_within(
    mount_point: &str,
    dev: Option<(u32, u32)>,
    until: Instant,
) -> Option<Vec<User>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let mp = mount_point.to_string();
    let spawned = std::thread::Builder::new()
        .name("find-users".into())
        .spawn(move || {
            let _ = tx.send(find(&mp, dev));
        });
    if let Err(e) = spawned {
        log::warn!("cannot start a thread to list the processes using {mount_point}: {e}");
        return None;
    }
    let found = rx
        .recv_timeout(until.saturating_duration_since(Instant::now()))
        .ok();
    if found.is_none() {
        log::warn!(
            "listing the processes using {mount_point} did not finish in time (a process's memory map is locked by a call stuck on the mount); going on without ending them"
        );
    }
    found
}

/// For x86_64 system calls taking a path: (index of the path argument,
/// index of the directory-fd argument for the `*at` forms).
#[cfg(target_arch = "x86_64")]
fn path_syscall(nr: i64) -> Option<(usize, Option<usize>)> {
    let plain = [
        libc::SYS_open,
        libc::SYS_stat,
        libc::SYS_lstat,
        libc::SYS_access,
        libc::SYS_execve,
        libc::SYS_chdir,
        libc::SYS_readlink,
        libc::SYS_mkdir,
        libc::SYS_rmdir,
        libc::SYS_unlink,
        libc::SYS_creat,
        libc::SYS_truncate,
        libc::SYS_chmod,
        libc::SYS_chown,
        libc::SYS_lchown,
        libc::SYS_statfs,
        libc::SYS_getxattr,
        libc::SYS_lgetxattr,
        libc::SYS_listxattr,
        libc::SYS_llistxattr,
        libc::SYS_rename,
        libc::SYS_link,
        libc::SYS_symlink,
        libc::SYS_utime,
        libc::SYS_utimes,
    ];
    let at = [
        libc::SYS_openat,
        libc::SYS_openat2,
        libc::SYS_newfstatat,
        libc::SYS_statx,
        libc::SYS_faccessat,
        libc::SYS_faccessat2,
        libc::SYS_readlinkat,
        libc::SYS_mkdirat,
        libc::SYS_unlinkat,
        libc::SYS_renameat,
        libc::SYS_renameat2,
        libc::SYS_fchmodat,
        libc::SYS_fchownat,
        libc::SYS_utimensat,
        libc::SYS_execveat,
        libc::SYS_name_to_handle_at,
    ];
    if plain.contains(&nr) {
        Some((0, None))
    } else if at.contains(&nr) {
        Some((1, Some(0)))
    } else {
        None
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn path_syscall(_nr: i64) -> Option<(usize, Option<usize>)> {
    None
}

/// Read a NUL-terminated string at `addr` in the process's memory.
fn read_c_string(base: &Path, addr: u64) -> Option<String> {
    use std::os::unix::fs::FileExt;
    let f = fs::File::open(base.join("mem")).ok()?;
    let mut buf = vec![0u8; 4096];
    let n = f.read_at(&mut buf, addr).ok()?;
    let end = buf[..n].iter().position(|b| *b == 0)?;
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

/// The absolute path a thread (`task`, a `/proc/PID/task/TID` directory) of
/// the process at `base` is blocked on, if it sits in a path system call.
fn blocked_path(base: &Path, task: &Path) -> Option<String> {
    let text = fs::read_to_string(task.join("syscall")).ok()?;
    let f: Vec<&str> = text.split_whitespace().collect();
    let nr: i64 = f.first()?.parse().ok()?;
    let (pi, di) = path_syscall(nr)?;
    // all six or none: a skipped field would shift the argument indexes
    let args = f
        .get(1..7)?
        .iter()
        .map(|a| hex(a))
        .collect::<Option<Vec<u64>>>()?;
    let path = read_c_string(base, *args.get(pi)?)?;
    if path.starts_with('/') {
        return Some(path);
    }
    let dir = match di.map(|i| args.get(i).copied()) {
        Some(Some(d)) if d as i32 != libc::AT_FDCWD => {
            link(&task.join("fd").join((d as i32).to_string()))?
        }
        Some(None) => return None,
        _ => link(&task.join("cwd"))?,
    };
    Some(format!("{}/{path}", dir.trim_end_matches('/')))
}

/// The paths any thread of the process at `base` is blocked on.
fn blocked_paths(base: &Path) -> Vec<String> {
    match fs::read_dir(base.join("task")) {
        Ok(tasks) => tasks
            .flatten()
            .filter_map(|t| blocked_path(base, &t.path()))
            .collect(),
        // no task directory (kernel without it, or the process just ended)
        Err(_) => blocked_path(base, base).into_iter().collect(),
    }
}

impl User {
    /// Still this process, alive and not a zombie (a zombie holds no files).
    fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }

    fn signal(&self, sig: Signal) {
        if !self.alive() {
            return;
        }
        log::debug!(
            "sending {sig} to {} ({}) using {:?}",
            self.pid,
            self.comm,
            self.how
        );
        if let Err(e) = kill(Pid::from_raw(self.pid), sig)
            && e != Errno::ESRCH
        {
            log::debug!("{sig} {}: {e}", self.pid);
        }
    }
}

fn wait_gone<'a>(users: &[&'a User], until: Instant) -> Vec<&'a User> {
    loop {
        let left: Vec<&User> = users.iter().copied().filter(|u| u.alive()).collect();
        if left.is_empty() || Instant::now() >= until {
            return left;
        }
        sleep(Duration::from_millis(20));
    }
}

/// SIGTERM the users, wait up to `grace`, SIGKILL the rest, wait until
/// `deadline`. Returns the pids still alive at the end.
pub fn terminate(users: &[User], grace: Duration, deadline: Instant) -> Vec<i32> {
    for u in users {
        u.signal(Signal::SIGTERM);
    }
    let all: Vec<&User> = users.iter().collect();
    let left = wait_gone(&all, (Instant::now() + grace).min(deadline));
    if left.is_empty() {
        return Vec::new();
    }
    for u in &left {
        u.signal(Signal::SIGKILL);
    }
    wait_gone(&left, deadline).iter().map(|u| u.pid).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_prefix_matching() {
        assert!(under("/mnt/data", "/mnt/data"));
        assert!(under("/mnt/data/x/y", "/mnt/data"));
        assert!(under("/mnt/data/f (deleted)", "/mnt/data"));
        assert!(!under("/mnt/database", "/mnt/data"));
        assert!(!under("socket:[123]", "/mnt/data"));
    }

    #[test]
    fn maps_by_device_or_path() {
        let maps = "\
7f00-7f01 r--p 00000000 00:32 1234 /mnt/data/lib.so
7f02-7f03 rw-p 00000000 00:00 0 
7f04-7f05 r-xp 00000000 08:01 99 /usr/lib/libc.so.6
";
        assert!(maps_use(maps, "/mnt/data", None));
        assert!(maps_use(maps, "/elsewhere", Some((0, 0x32))));
        assert!(!maps_use(maps, "/elsewhere", Some((0, 0x33))));
        assert!(!maps_use(
            "7f02-7f03 rw-p 00000000 00:00 0 \n",
            "/x",
            Some((0, 0))
        ));
    }

    #[test]
    fn reads_the_path_of_a_blocked_system_call() {
        // a child blocked in open() of a FIFO nobody writes to
        let dir = std::env::temp_dir().join(format!("nas-blocked-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let mut child = std::process::Command::new("cat")
            .arg(&fifo)
            .current_dir("/")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let d = dir.to_string_lossy().into_owned();
        let mut found = false;
        for _ in 0..200 {
            if find(&d, None)
                .iter()
                .any(|u| u.pid == pid && u.how.iter().any(|h| h.starts_with("blocked")))
            {
                found = true;
                break;
            }
            sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        fs::remove_dir_all(&dir).unwrap();
        assert!(found, "the child blocked in open() was not found");
    }

    /// A helper process (this test binary run again) whose second thread blocks in open() of a
    /// FIFO while its main thread sleeps: found through the thread, not the main thread.
    #[test]
    fn finds_a_process_whose_other_thread_is_blocked() {
        const INNER: &str = "NAS_TEST_BLOCKED_THREAD_FIFO";
        if let Some(fifo) = std::env::var_os(INNER) {
            std::thread::spawn(move || fs::File::open(fifo));
            sleep(Duration::from_secs(30));
            return;
        }
        let dir = std::env::temp_dir().join(format!("nas-thread-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let mut helper = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "users::tests::finds_a_process_whose_other_thread_is_blocked",
                "--exact",
                "--test-threads=1",
            ])
            .env(INNER, &fifo)
            .current_dir("/")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = helper.id() as i32;
        let d = dir.to_string_lossy().into_owned();
        let mut how = None;
        for _ in 0..300 {
            how = find(&d, None)
                .into_iter()
                .find(|u| u.pid == pid)
                .map(|u| u.how);
            if how.is_some() {
                break;
            }
            sleep(Duration::from_millis(10));
        }
        let _ = helper.kill();
        let _ = helper.wait();
        fs::remove_dir_all(&dir).unwrap();
        let how = how.expect("the process with a thread blocked in open() was not found");
        assert!(
            how.iter()
                .any(|h| h.starts_with("blocked in a system call on")),
            "{how:?}"
        );
    }

    #[test]
    fn a_reused_pid_is_not_signalled() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let start = start_time(pid).unwrap();
        // the same pid with another start time: a different process
        let other = User {
            pid,
            start: start + 1,
            comm: "sleep".into(),
            how: vec!["cwd".into()],
        };
        let left = terminate(
            &[other],
            Duration::from_millis(50),
            Instant::now() + Duration::from_millis(200),
        );
        assert!(left.is_empty());
        assert_eq!(start_time(pid), Some(start), "the process was signalled");
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn find_within_answers_like_find() {
        let dir = std::env::temp_dir().join(format!("nas-within-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let d = dir.to_string_lossy().into_owned();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .current_dir(&dir)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let found = find_within(&d, None, Instant::now() + Duration::from_secs(5)).unwrap();
        assert!(found.iter().any(|u| u.pid == pid));
        // no time at all: no answer, and no waiting
        let t0 = Instant::now();
        assert_eq!(find_within(&d, None, t0), None);
        assert!(t0.elapsed() < Duration::from_secs(1));
        let _ = child.kill();
        let _ = child.wait();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn finds_and_terminates_a_process_with_cwd_inside() {
        let dir = std::env::temp_dir().join(format!("nas-users-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let d = dir.to_string_lossy().into_owned();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .current_dir(&dir)
            .spawn()
            .unwrap();
        let users = find(&d, None);
        let me = users.iter().find(|u| u.pid == child.id() as i32).unwrap();
        assert!(me.how.contains(&"cwd".to_string()));
        let left = terminate(
            &users,
            Duration::from_secs(2),
            Instant::now() + Duration::from_secs(5),
        );
        let _ = child.wait();
        assert!(left.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
