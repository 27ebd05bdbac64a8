//! Running and probing lkhelpers binaries, the only programs `check-lifekeeper` starts.
//!
//! [`run`] starts a judged file from its descriptor (`/proc/self/fd/N`) with argv\[0\]
//! [`ARGV0`], in its own process group, killed at its budget; [`probe_binary`] judges the
//! binary a wrapper execs with its whole chain and asks it `--version` only when the chain is
//! clean, it is executable and it carries [`BINARY_MARKER`]. Both rules exist so that nothing
//! but an lkhelpers binary, and nothing swapped in after the judgement, ever runs as root.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::time::Duration;

use lkh_common::trusted::{self, Flaw, Want};

/// argv\[0\] of every binary we run: no action name, no `!action` parent directory.
pub const ARGV0: &str = "lkhelpers-check";
/// Time allowed for one `--version` or `validate` run.
pub const RUN_BUDGET: Duration = Duration::from_secs(5);
/// The bytes every lkhelpers binary contains (see `lkh_common::genapp::BINARY_MARKER`).
/// ELF files without it are not ours and are never run.
pub const BINARY_MARKER: &[u8] = lkh_common::genapp::BINARY_MARKER;
/// Largest ELF scanned for [`BINARY_MARKER`].
const MAX_SCAN: u64 = 256 << 20;
/// Most bytes kept of a child's stdout or stderr.
const MAX_OUTPUT: u64 = 64 << 10;

pub(super) fn executable(m: &fs::Metadata) -> bool {
    m.mode() & 0o111 != 0
}

/// Whether `f` contains `needle`, reading at most [`MAX_SCAN`] bytes.
pub(super) fn contains(mut f: impl Read, needle: &[u8]) -> bool {
    let mut buf = vec![0u8; 64 << 10];
    let mut carry: Vec<u8> = Vec::new();
    let mut left = MAX_SCAN;
    while left > 0 {
        let n = match f.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        left = left.saturating_sub(n as u64);
        carry.extend_from_slice(&buf[..n]);
        if carry.windows(needle.len()).any(|w| w == needle) {
            return true;
        }
        let keep = carry.len().saturating_sub(needle.len() - 1);
        carry.drain(..keep);
    }
    false
}

/// The outcome of a bounded run.
#[derive(Debug, Clone)]
pub struct Ran {
    /// `None` when the run was killed at the deadline.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// The first non-empty line of stderr.
    pub fn reason(&self) -> &str {
        self.stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("(no message on stderr)")
    }

    /// "timed out after 5 s" / "exited 3: <reason>" / "was killed by signal 9".
    pub(super) fn failure(&self) -> String {
        match self.status {
            None => format!("did not answer within {} s", RUN_BUDGET.as_secs()),
            Some(s) => match s.code() {
                Some(c) => format!("exited {c}: {}", self.reason()),
                None => format!("was killed by a signal ({s})"),
            },
        }
    }
}

/// Runs the open file `program` (`/proc/self/fd/N`: the file that was judged, whatever
/// happened to its path since) with `args`, argv\[0\] [`ARGV0`], stdin from /dev/null, the
/// environment passed through plus `env`, in its own process group. At `budget` the group
/// is killed and [`Ran::status`] is `None`. Returns within `budget` plus about a second.
pub fn run(
    program: &File,
    args: &[&str],
    env: &[(&str, &Path)],
    budget: Duration,
) -> io::Result<Ran> {
    let fd = program.as_raw_fd();
    let mut cmd = Command::new(format!("/proc/self/fd/{fd}"));
    crate::sys::keep_across_exec(&mut cmd, fd);
    cmd.arg0(ARGV0).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // "Text file busy": a process that forked while another held the file open for writing
    // (a copy being finished) still holds that descriptor for a moment
    let ran = crate::runner::run_bounded(
        &mut cmd,
        budget,
        (MAX_OUTPUT, MAX_OUTPUT),
        Duration::from_millis(500),
    )?;
    Ok(Ran {
        status: ran.status,
        stdout: ran.stdout,
        stderr: ran.stderr,
    })
}

/// What was learnt about a binary a wrapper execs ([`probe_binary`]).
#[derive(Debug, Clone, Default)]
pub(super) struct Binary {
    /// Why it is not used, `(what, remedy)`; `what` follows "execs BINARY, ".
    pub(super) problem: Option<(String, String)>,
    /// Its kit, from `--version` (`lkh-<kit> …`).
    pub(super) kit: Option<String>,
    /// The judged descriptor, the one that runs `validate`.
    pub(super) file: Option<Arc<File>>,
    /// Flaws on the way to it (directories, links): one finding per component.
    pub(super) way: Vec<Flaw>,
    /// It carries [`BINARY_MARKER`].
    pub(super) ours: bool,
}

/// Judges the binary a wrapper execs with its whole chain and, when it is clean, executable
/// and an lkhelpers binary, asks it `--version` (from the judged descriptor). `hint` names the
/// kit in remedies.
pub(super) fn probe_binary(bin: &Path, hint: &str) -> Binary {
    let name = format!("lkh-{hint}");
    let reinstall = format!(
        "install {name} at {} again, or run `{name} genapp` from where it is now and copy its wrappers over LifeKeeper's copies on every node",
        bin.display()
    );
    let mut b = Binary::default();
    let j = match trusted::judge(bin, Want::File) {
        Ok(j) => j,
        Err(u) => {
            let what = if u.missing && u.path == bin {
                format!(
                    "which does not exist (was {name} removed or moved?), so every action of this resource fails"
                )
            } else if u.missing {
                format!(
                    "which does not exist ({} is missing), so every action of this resource fails",
                    u.path.display()
                )
            } else {
                format!("which cannot be followed: {}: {}", u.path.display(), u.what)
            };
            b.way = u.flaws;
            b.problem = Some((what, reinstall));
            return b;
        }
    };
    let (target, way): (Vec<Flaw>, Vec<Flaw>) = j.flaws.into_iter().partition(|f| f.target);
    b.way = way;
    b.ours = contains(&j.file, BINARY_MARKER);
    let shown = if j.real == bin {
        String::new()
    } else {
        format!(" (really {})", j.real.display())
    };
    if !target.is_empty() {
        let what: Vec<&str> = target.iter().map(|f| f.what.as_str()).collect();
        let fix: Vec<&str> = target.iter().map(|f| f.fix.as_str()).collect();
        b.problem = Some((
            format!("which{shown} is {}; not run", what.join(" and ")),
            fix.join("; "),
        ));
        return b;
    }
    if !executable(&j.meta) {
        b.problem = Some((
            format!("which{shown} is not executable"),
            format!("chmod 755 {}", j.real.display()),
        ));
        return b;
    }
    if !b.way.is_empty() {
        // not run: each flaw is a finding of its own
        return b;
    }
    if !b.ours {
        b.problem = Some((
            format!(
                "which{shown} is not an lkhelpers binary (it lacks the string every lkhelpers binary carries); not run"
            ),
            format!(
                "make the wrapper exec {name}: run `{name} genapp` and copy its wrappers over LifeKeeper's copies on every node"
            ),
        ));
        return b;
    }
    match run(&j.file, &["--version"], &[], RUN_BUDGET) {
        Err(e) => b.problem = Some((format!("which{shown} cannot be run: {e}"), reinstall)),
        Ok(r) if !r.status.is_some_and(|s| s.success()) => {
            b.problem = Some((format!("whose `--version` {}", r.failure()), reinstall));
        }
        Ok(r) => {
            let line = r.stdout.lines().next().unwrap_or_default();
            match line
                .split_once(' ')
                .and_then(|(n, _)| n.strip_prefix("lkh-"))
            {
                Some(kit) if !kit.is_empty() => {
                    b.kit = Some(kit.to_owned());
                    b.file = Some(Arc::new(j.file));
                }
                _ => {
                    b.problem = Some((
                        format!("which{shown} is not an lkhelpers kit: `--version` says {line:?}"),
                        reinstall,
                    ));
                }
            }
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_search_crosses_buffer_boundaries() {
        let dir = std::env::temp_dir().join(format!("lkh-wiring-{}", std::process::id()));
        let mut data = vec![b'x'; (64 << 10) - 5];
        data.extend_from_slice(BINARY_MARKER);
        fs::write(&dir, &data).unwrap();
        assert!(contains(fs::File::open(&dir).unwrap(), BINARY_MARKER));
        fs::write(&dir, vec![b'x'; 200 << 10]).unwrap();
        assert!(!contains(fs::File::open(&dir).unwrap(), BINARY_MARKER));
        let _ = fs::remove_file(&dir);
    }
}
