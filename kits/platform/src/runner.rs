//! Other programs run with a deadline: LifeKeeper's own tools (`sys_list`, `lcduname`,
//! `lcdremexec`) for `check-cluster`, and the kits' `status --json` for `doctor`.
//!
//! Each program runs in a process group of its own with stdin from `/dev/null`; its stdout
//! and stderr are read by threads, each kept up to a bound (the rest is drained, so a chatty
//! child never blocks on a full pipe). At the deadline the whole group is killed with SIGKILL,
//! so a program that hangs — or its children — cannot outlive the call; the call returns
//! within the budget plus about a second. Unlike `wiring::run`, argv\[0\] is left as the
//! program's path: LifeKeeper's tools may be one binary that dispatches on its name.
//!
//! Only programs that root may trust are run ([`trusted_program`]).

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The most bytes kept of a program's stdout.
pub const MAX_STDOUT: u64 = 1 << 20;
/// The most bytes kept of a program's stderr.
pub const MAX_STDERR: u64 = 16 << 10;

/// What a bounded run gave.
#[derive(Debug, Clone)]
pub struct Ran {
    /// `None` when the program was killed at the deadline.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    /// How long it took.
    pub took: Duration,
}

impl Ran {
    /// The first non-empty line of stderr, or a stand-in.
    pub fn reason(&self) -> &str {
        self.stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("(nothing on stderr)")
    }

    /// "did not answer within 20 s" / "exited 3: <reason>" / "was killed by signal 9".
    pub fn failure(&self, budget: Duration) -> String {
        match self.status {
            None => format!(
                "did not answer within {} s and was killed",
                budget.as_secs()
            ),
            Some(s) => match s.code() {
                Some(c) => format!("exited {c}: {}", self.reason()),
                None => format!("was killed by a signal ({s})"),
            },
        }
    }

    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

fn reader(pipe: Option<impl Read + Send + 'static>, max: u64) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(p) = pipe {
        let _ = std::thread::Builder::new().spawn(move || {
            let mut p = p;
            let mut buf = Vec::new();
            let _ = (&mut p).take(max).read_to_end(&mut buf);
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
            let _ = io::copy(&mut p, &mut io::sink());
        });
    }
    rx
}

fn kill_group(child: &mut std::process::Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.kill();
    let grace = Instant::now() + Duration::from_secs(1);
    while Instant::now() < grace {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `program args` with `env` added to the environment, bounded by `budget`.
pub fn run(
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    budget: Duration,
) -> io::Result<Ran> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_bounded(
        &mut cmd,
        budget,
        (MAX_STDOUT, MAX_STDERR),
        (budget / 4).min(Duration::from_secs(1)),
    )
}

/// Runs `cmd` (program, arguments and environment already set) with stdin from `/dev/null`,
/// in a process group of its own, keeping at most `max.0` bytes of stdout and `max.1` of
/// stderr; at `budget` the group is killed and [`Ran::status`] is `None`. A spawn that meets
/// "text file busy" is tried again for up to `busy_for`. Returns within `budget` plus about
/// a second. The one bounded run of the crate: `run` and `wiring::run` build on it.
pub(crate) fn run_bounded(
    cmd: &mut Command,
    budget: Duration,
    max: (u64, u64),
    busy_for: Duration,
) -> io::Result<Ran> {
    let start = Instant::now();
    let deadline = start + budget;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // "text file busy": the program is being written (an upgrade, or a fork elsewhere
    // holding it open for a moment); asked again briefly, within the budget
    let mut child = loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && start.elapsed() < busy_for => {
                std::thread::sleep(Duration::from_millis(20));
            }
            r => break r?,
        }
    };
    let out = reader(child.stdout.take(), max.0);
    let err = reader(child.stderr.take(), max.1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                kill_group(&mut child);
                break None;
            }
        }
    };
    // a grandchild may still hold the pipes: wait for them only until the deadline
    let left = || deadline.saturating_duration_since(Instant::now());
    let stdout = out.recv_timeout(left()).unwrap_or_default();
    let stderr = err.recv_timeout(left()).unwrap_or_default();
    Ok(Ran {
        status,
        stdout,
        stderr,
        took: start.elapsed(),
    })
}

/// Whether root may run `path`: it resolves to a regular, executable file owned by root (or
/// by us when not root) and not writable by group or others, in a directory that is the same.
pub fn trusted_program(path: &Path) -> Result<(), String> {
    let me = nix::unistd::geteuid().as_raw();
    let ok_owner = |uid: u32| uid == 0 || uid == me;
    let real = fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let m = fs::metadata(&real).map_err(|e| format!("{}: {e}", real.display()))?;
    if !m.is_file() || m.mode() & 0o111 == 0 {
        return Err(format!("{}: not an executable file", real.display()));
    }
    for (what, meta) in [
        ("", m),
        (
            "the directory of ",
            fs::metadata(real.parent().unwrap_or(Path::new("/")))
                .map_err(|e| format!("{}: {e}", real.display()))?,
        ),
    ] {
        if !ok_owner(meta.uid()) {
            return Err(format!(
                "{what}{} is owned by uid {}, not root, so root does not run it",
                real.display(),
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "{what}{} is writable by group or others (mode {:04o}), so root does not run it",
                real.display(),
                meta.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_and_exit_code() {
        let r = run(
            Path::new("/bin/sh"),
            &["-c", "echo out; echo err >&2; exit 3"],
            &[("X", "1")],
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(r.stdout, "out\n");
        assert_eq!(r.reason(), "err");
        assert_eq!(r.status.and_then(|s| s.code()), Some(3));
        assert!(
            r.failure(Duration::from_secs(5))
                .starts_with("exited 3: err")
        );
    }

    #[test]
    fn a_hanging_program_and_its_children_are_killed_at_the_deadline() {
        let t = Instant::now();
        let r = run(
            Path::new("/bin/sh"),
            &["-c", "sleep 60 & echo $!; wait"],
            &[],
            // long enough for the shell to say its child's pid on a loaded machine
            Duration::from_secs(3),
        )
        .unwrap();
        assert!(r.status.is_none());
        assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
        let pid: i32 = r
            .stdout
            .trim()
            .parse()
            .expect("the shell said its child's pid");
        // the background sleep was in the group: gone (or a zombie) soon after
        let alive = || {
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| !s.contains(") Z"))
                .unwrap_or(false)
        };
        let until = Instant::now() + Duration::from_secs(5);
        while alive() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(), "the child's child {pid} survived");
    }

    #[test]
    fn a_program_others_may_change_is_not_trusted() {
        assert!(trusted_program(Path::new("/bin/sh")).is_ok());
        assert!(trusted_program(Path::new("/nonexistent/x")).is_err());
        let dir = std::env::temp_dir().join(format!("lkh-runner-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let f = dir.join("prog");
        fs::write(&f, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(
            trusted_program(&f)
                .unwrap_err()
                .contains("writable by group or others")
        );
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            trusted_program(&f)
                .unwrap_err()
                .contains("not an executable")
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
