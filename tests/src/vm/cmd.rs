//! Host commands with a deadline: every external program the harness runs (apt-get, cargo,
//! depmod, ldd, ...) goes through [`run`], which kills the program's whole process group when
//! the time is up, so no harness step can hang.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::VmError;

/// What a finished command printed.
pub(crate) struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn stderr_tail(&self) -> String {
        let s = String::from_utf8_lossy(&self.stderr);
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// After the program exits, how long its output may take to reach end of file: a daemon it
/// started (apt-get installing a service) can keep the pipe open for ever.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Reads `r` to its end in a thread; the receiver gets everything read.
fn drain(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Runs `cmd` (stdin closed, output captured) and waits at most `timeout`.
pub(crate) fn run(cmd: &mut Command, timeout: Duration) -> Result<Output, VmError> {
    let what = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| VmError::Setup(format!("cannot start `{what}`: {e}")))?;
    let out = drain(child.stdout.take().expect("piped stdout"));
    let err = drain(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => {
                let pgid = Pid::from_raw(child.id() as i32);
                let _ = killpg(pgid, Signal::SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
                return Err(VmError::Setup(format!(
                    "`{what}` did not finish within {} s and was killed",
                    timeout.as_secs()
                )));
            }
        }
    };
    let grace = Instant::now() + DRAIN_GRACE;
    let collect = |rx: mpsc::Receiver<Vec<u8>>| {
        rx.recv_timeout(grace.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
    };
    Ok(Output {
        status,
        stdout: collect(out),
        stderr: collect(err),
    })
}

/// Like [`run`], but a non-zero exit status is an error carrying the end of stderr.
pub(crate) fn run_ok(cmd: &mut Command, timeout: Duration) -> Result<Output, VmError> {
    let what = describe(cmd);
    let o = run(cmd, timeout)?;
    if o.status.success() {
        Ok(o)
    } else {
        Err(VmError::Setup(format!(
            "`{what}` failed ({}):\n{}",
            o.status,
            o.stderr_tail()
        )))
    }
}
