//! Is each gen/app resource that uses lkhelpers wired right on this node, and is what
//! LifeKeeper will run really what the admin meant?
//!
//! LifeKeeper's Generic Application kit copies the scripts given to its wizard into
//! `$LKROOT/subsys/gen/resources/app/actions/!<action>/<tag>` (recover: `…/recovery/!recover/`)
//! and runs the copies as root with `-t <tag> -i <id>`. lkhelpers hands the wizard the small
//! wrappers `lkh-<kit> genapp` writes ([`lkh_common::genapp`]). A wrong answer in the wizard (the
//! remove wrapper in the Restore field, no quickCheck), an uninstalled binary, a missing
//! `/etc/lkhelpers/<tag>.conf` or a `TIMEOUT` longer than LifeKeeper's check interval all only
//! show at failover time; this module finds them beforehand, one [`Finding`] each.
//!
//! What runs is judged, not what a file says about itself. A wrapper's binary, action and
//! arguments come from its one executable line, read as `/bin/sh` reads it
//! ([`genapp::parse_script`]; anything but `exec BINARY ACTION "$@"` is an error naming the
//! line); its marker comment only says that genapp wrote it, and a script without the marker
//! whose line execs an lkhelpers binary is ours too. Every file LifeKeeper runs — the copies,
//! the interpreter of the wrappers ([`genapp::INTERPRETER`]) and the binary a wrapper execs —
//! is judged with its whole directory chain from `/` ([`trusted::judge`]: owned by root, not
//! writable by group or others, links only when root's), and so is `$LKROOT` itself: each
//! component another user could change is one error that names it and the fix.
//!
//! What it runs, and why that is safe: a wrapper is only read. A binary (the one a wrapper
//! execs, or a copy of one) is run with `--version` and `validate -t <tag>` only, always with
//! argv\[0\] set to [`ARGV0`] (a binary called through `…/!restore/<tag>` would otherwise
//! perform restore), bounded by [`RUN_BUDGET`], and only when its whole chain is clean, it is
//! executable and it contains a string every lkhelpers binary has ([`BINARY_MARKER`]): other
//! programs are never started. It is run from the descriptor that was judged
//! (`/proc/self/fd/N`), so nothing can swap the file between the judgement and the run.
//! Scripts that are neither ours nor run ours belong to other gen/app resources and are skipped.
//!
//! Mechanism only: findings are returned, never printed.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use lkh_common::genapp::{self, Exec, MAX_WRAPPER_LEN, NotGenapp, Wrapper};
use lkh_common::trusted::{self, Flaw, Want};
use lkh_common::{Action, Tag};

/// argv\[0\] of every binary we run: no action name, no `!action` parent directory.
pub const ARGV0: &str = "lkhelpers-check";
/// Time allowed for one `--version` or `validate` run.
pub const RUN_BUDGET: Duration = Duration::from_secs(5);
/// The bytes every lkhelpers binary contains (see `lkh_common::genapp::BINARY_MARKER`).
/// ELF files without it are not ours and are never run.
pub const BINARY_MARKER: &[u8] = lkh_common::genapp::BINARY_MARKER;
/// LifeKeeper's check interval when `/etc/default/LifeKeeper` does not set it.
pub const DEFAULT_CHECK_INTERVAL: u64 = 120;
/// Where earlier lkhelpers versions linked their actions (nothing ever called them).
pub const OLD_LAYOUT: &str = "subsys/lkhelpers";
/// The lkhelpers binary that is not a resource kit.
const NOT_A_KIT: &str = "platform";
/// Largest ELF scanned for [`BINARY_MARKER`].
const MAX_SCAN: u64 = 256 << 20;
/// Most bytes kept of a child's stdout or stderr.
const MAX_OUTPUT: u64 = 64 << 10;

/// How much a finding matters. `Error` makes `check-lifekeeper` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Info,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// One finding: the file it is about, what is wrong, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    /// The gen/app resource tag, when the finding is about one.
    pub tag: Option<String>,
    pub file: PathBuf,
    pub what: String,
    /// Empty when there is nothing to do.
    pub remedy: String,
}

impl Finding {
    fn new(level: Level, tag: Option<&str>, file: &Path, what: String, remedy: String) -> Self {
        Finding {
            level,
            tag: tag.map(str::to_owned),
            file: file.to_path_buf(),
            what,
            remedy,
        }
    }

    /// `FILE: WHAT; REMEDY` on one line.
    pub fn message(&self) -> String {
        let mut s = format!("{}: {}", self.file.display(), self.what);
        if !self.remedy.is_empty() {
            s += "; ";
            s += &self.remedy;
        }
        s
    }
}

/// LifeKeeper's `LKCHECKINTERVAL`, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckInterval {
    pub seconds: u64,
    /// `FILE:LINE` of the assignment, or `FILE (unset, default 120)`.
    pub source: String,
    /// Set when the file's value was unusable and the default stands in.
    pub problem: Option<String>,
}

impl CheckInterval {
    /// Reads `LKCHECKINTERVAL` from the text of `file` (the LifeKeeper defaults file).
    pub fn from_defaults(file: &Path, text: &str) -> CheckInterval {
        let f = file.display();
        match crate::lifekeeper::find_key(text, "LKCHECKINTERVAL") {
            None => CheckInterval {
                seconds: DEFAULT_CHECK_INTERVAL,
                source: format!("{f} (unset, default {DEFAULT_CHECK_INTERVAL})"),
                problem: None,
            },
            Some((line, v)) => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => CheckInterval {
                    seconds: n,
                    source: format!("{f}:{line}"),
                    problem: None,
                },
                _ => CheckInterval {
                    seconds: DEFAULT_CHECK_INTERVAL,
                    source: format!("{f}:{line}"),
                    problem: Some(format!(
                        "LKCHECKINTERVAL=\"{v}\" is not a positive whole number of seconds; assumed {DEFAULT_CHECK_INTERVAL}"
                    )),
                },
            },
        }
    }
}

/// What to check.
#[derive(Debug, Clone)]
pub struct Options {
    pub lkroot: PathBuf,
    /// The LifeKeeper defaults file; passed to the kits as `LKHELPERS_LK_DEFAULTS`.
    pub defaults: PathBuf,
    pub interval: CheckInterval,
    /// Where the kits read `<tag>.conf` (for the messages only; the kits find it themselves).
    pub conf_dir: PathBuf,
}

/// The findings, plus debug notes on files that were skipped.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// How many gen/app tags use lkhelpers.
    pub tags: usize,
    pub notes: Vec<String>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.level == Level::Error)
    }
}

/// What a file in a gen/app directory is.
#[derive(Debug, Clone)]
pub enum Script {
    /// One of our wrappers: a `/bin/sh` script whose one executable line is genapp's form and
    /// that carries genapp's marker (or execs an lkhelpers binary). `exec` is what it runs,
    /// `text` its content, `marker` what its comment claims.
    Wrapper {
        exec: Exec,
        text: String,
        marker: Option<Wrapper>,
    },
    /// Carries genapp's marker but does not run what genapp's wrappers run: the line that is
    /// not genapp's form and why.
    Broken { why: NotGenapp, marker: Wrapper },
    /// genapp's form without genapp's marker: one of ours when its binary is an lkhelpers
    /// binary ([`check`] decides).
    Candidate { exec: Exec, text: String },
    /// A copy of an lkhelpers binary; `name` is `lkh-<kit>` and `version` its `--version`
    /// line; `file` is the judged descriptor, the one that is run.
    Copy {
        name: String,
        version: String,
        file: Arc<File>,
    },
    /// Not ours (another application's script or program).
    Foreign(String),
    /// Could not be judged (unreadable, a dangling link, not a regular file).
    Unknown(String),
    /// An lkhelpers binary whose path someone other than root could change: not run.
    Insecure(String),
}

impl Script {
    /// Ours: a wrapper (a working or a broken one) or a copy of a kit binary.
    fn ours(&self) -> bool {
        matches!(
            self,
            Script::Wrapper { .. } | Script::Broken { .. } | Script::Copy { .. }
        )
    }
}

fn executable(m: &fs::Metadata) -> bool {
    m.mode() & 0o111 != 0
}

/// Whether `f` contains `needle`, reading at most [`MAX_SCAN`] bytes.
fn contains(mut f: impl Read, needle: &[u8]) -> bool {
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

/// A gen/app copy, judged ([`classify`]).
#[derive(Debug, Clone)]
pub struct Judged {
    pub script: Script,
    /// Every component of its path (the copy itself included) someone other than root could
    /// change.
    pub flaws: Vec<Flaw>,
    /// The copy's own metadata (through its links), when it could be opened.
    pub meta: Option<fs::Metadata>,
    /// What the copy points to, when it is a symbolic link itself.
    pub link: Option<OsString>,
}

/// Judges the file at `path` (a gen/app copy) with its whole chain and classifies it. Never
/// runs a wrapper; runs an ELF file with `--version` only under the rules in the module docs.
pub fn classify(path: &Path) -> Judged {
    let j = match trusted::judge(path, Want::File) {
        Ok(j) => j,
        Err(u) => {
            let what = if u.path == path {
                u.what
            } else {
                format!("{}: {}", u.path.display(), u.what)
            };
            return Judged {
                script: Script::Unknown(format!("cannot be followed to a file ({what})")),
                flaws: u.flaws,
                meta: None,
                link: None,
            };
        }
    };
    let link = j
        .links
        .iter()
        .find(|(at, _)| at == path)
        .map(|(_, to)| to.clone());
    let flaws = j.flaws.clone();
    let meta = Some(j.meta.clone());
    Judged {
        script: classify_open(j),
        flaws,
        meta,
        link,
    }
}

fn classify_open(j: trusted::Judged) -> Script {
    let mut head = Vec::new();
    if let Err(e) = (&j.file)
        .take(MAX_WRAPPER_LEN as u64 + 1)
        .read_to_end(&mut head)
    {
        return Script::Unknown(format!("cannot read: {e}"));
    }
    if head.starts_with(b"\x7fELF") {
        if !executable(&j.meta) {
            return Script::Foreign("an ELF file without execute permission".into());
        }
        let ours = head
            .windows(BINARY_MARKER.len())
            .any(|w| w == BINARY_MARKER)
            || contains(&j.file, BINARY_MARKER);
        if !ours {
            return Script::Foreign("an ELF program that is not an lkhelpers binary".into());
        }
        if !j.flaws.is_empty() {
            return Script::Insecure(
                "an lkhelpers binary whose path someone other than root can change".into(),
            );
        }
        return match run(&j.file, &["--version"], &[], RUN_BUDGET) {
            Ok(r) if r.status.is_some_and(|s| s.success()) => {
                let line = r.stdout.lines().next().unwrap_or_default().to_owned();
                match line.split_once(' ') {
                    Some((name, _)) if name.starts_with("lkh-") => Script::Copy {
                        name: name.to_owned(),
                        version: line,
                        file: Arc::new(j.file),
                    },
                    _ => Script::Foreign(format!("an ELF program whose --version says {line:?}")),
                }
            }
            Ok(r) => Script::Unknown(format!(
                "contains lkhelpers' code but `--version` {}",
                r.failure()
            )),
            Err(e) => Script::Unknown(format!("cannot run it with --version: {e}")),
        };
    }
    if head.len() > MAX_WRAPPER_LEN {
        return Script::Foreign("larger than any wrapper genapp writes".into());
    }
    let Ok(text) = String::from_utf8(head) else {
        return Script::Foreign("not an lkhelpers wrapper (not UTF-8 text)".into());
    };
    match (genapp::parse_script(&text), Wrapper::from_marker(&text)) {
        (Ok(exec), Some(marker)) => Script::Wrapper {
            exec,
            text,
            marker: Some(marker),
        },
        (Ok(exec), None) => Script::Candidate { exec, text },
        (Err(why), Some(marker)) => Script::Broken { why, marker },
        (Err(_), None) => Script::Foreign("not an lkhelpers wrapper".into()),
    }
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
    fn failure(&self) -> String {
        match self.status {
            None => format!("did not answer within {} s", RUN_BUDGET.as_secs()),
            Some(s) => match s.code() {
                Some(c) => format!("exited {c}: {}", self.reason()),
                None => format!("was killed by a signal ({s})"),
            },
        }
    }
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(p) = pipe {
        let _ = std::thread::Builder::new().spawn(move || {
            let mut p = p;
            let mut buf = Vec::new();
            let _ = (&mut p).take(MAX_OUTPUT).read_to_end(&mut buf);
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
            // keep draining so the child never blocks on a full pipe
            let _ = io::copy(&mut p, &mut io::sink());
        });
    }
    rx
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
    let deadline = Instant::now() + budget;
    let fd = program.as_raw_fd();
    let mut cmd = Command::new(format!("/proc/self/fd/{fd}"));
    crate::sys::keep_across_exec(&mut cmd, fd);
    cmd.arg0(ARGV0)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // "Text file busy": a process that forked while another held the file open for writing
    // (a copy being finished) still holds that descriptor for a moment: try again briefly
    let mut child = {
        let mut tries = 0;
        loop {
            match cmd.spawn() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 20 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(25));
                }
                other => break other?,
            }
        }
    };
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let kill = |child: &mut std::process::Child| {
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
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                kill(&mut child);
                break None;
            }
        }
    };
    // a leftover grandchild may hold the pipes open: wait for them only until the deadline
    let left = || deadline.saturating_duration_since(Instant::now());
    let stdout = out.recv_timeout(left()).unwrap_or_default();
    let stderr = err.recv_timeout(left()).unwrap_or_default();
    Ok(Ran {
        status,
        stdout,
        stderr,
    })
}

/// What was learnt about a binary a wrapper execs ([`probe_binary`]).
#[derive(Debug, Clone, Default)]
struct Binary {
    /// Why it is not used, `(what, remedy)`; `what` follows "execs BINARY, ".
    problem: Option<(String, String)>,
    /// Its kit, from `--version` (`lkh-<kit> …`).
    kit: Option<String>,
    /// The judged descriptor, the one that runs `validate`.
    file: Option<Arc<File>>,
    /// Flaws on the way to it (directories, links): one finding per component.
    way: Vec<Flaw>,
    /// It carries [`BINARY_MARKER`].
    ours: bool,
}

/// Judges the binary a wrapper execs with its whole chain and, when it is clean, executable
/// and an lkhelpers binary, asks it `--version` (from the judged descriptor). `hint` names the
/// kit in remedies.
fn probe_binary(bin: &Path, hint: &str) -> Binary {
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

/// One gen/app copy: where it is and what it was judged to be.
#[derive(Debug, Clone)]
struct Slot {
    path: PathBuf,
    judged: Judged,
}

/// One tag's four slots (restore, remove, quickCheck, recover).
#[derive(Debug, Default)]
struct TagFiles {
    slots: [Option<Slot>; 4],
}

fn slot(action: Action) -> usize {
    Action::ALL.iter().position(|a| *a == action).unwrap_or(0)
}

/// Reports each flawed component once, whichever path led to it.
#[derive(Debug, Default)]
struct Chains {
    seen: BTreeSet<PathBuf>,
}

impl Chains {
    /// One error per component not reported yet, `why` saying what it means; true when
    /// `flaws` is not empty (reported now or before).
    fn add(
        &mut self,
        out: &mut Vec<Finding>,
        tag: Option<&str>,
        flaws: &[Flaw],
        why: impl Fn(&Flaw) -> String,
    ) -> bool {
        for f in flaws {
            if self.seen.insert(f.path.clone()) {
                out.push(Finding::new(
                    Level::Error,
                    tag,
                    &f.path,
                    why(f),
                    f.fix.clone(),
                ));
            }
        }
        !flaws.is_empty()
    }
}

/// A flawed directory of LifeKeeper's (or a link on the way to one), for chain findings.
fn below(f: &Flaw) -> String {
    format!(
        "{}, so someone other than root can change what LifeKeeper runs as root below it",
        f.what
    )
}

/// A flaw on the way to a gen/app copy, or on the copy itself.
fn copy_flaw(f: &Flaw) -> String {
    if f.target {
        format!("LifeKeeper runs this file as root, and it is {}", f.what)
    } else {
        below(f)
    }
}

/// The state of one check: the binaries probed and the components reported so far.
struct Ctx<'a> {
    opts: &'a Options,
    probes: BTreeMap<PathBuf, Binary>,
    chains: Chains,
    /// The interpreter's flaws, once judged.
    shell: Option<Vec<Flaw>>,
}

impl Ctx<'_> {
    fn probe(&mut self, bin: &Path, hint: &str) -> &Binary {
        self.probes
            .entry(bin.to_path_buf())
            .or_insert_with(|| probe_binary(bin, hint))
    }

    /// Judges the wrappers' interpreter (once); true when it is flawed.
    fn shell(&mut self, out: &mut Vec<Finding>, tag: &str) -> bool {
        let flaws = self.shell.get_or_insert_with(|| {
            let sh = Path::new(genapp::INTERPRETER);
            match trusted::judge(sh, Want::File) {
                Ok(j) => j.flaws,
                Err(u) => {
                    let mut flaws = u.flaws;
                    flaws.push(Flaw {
                        what: format!("{} (on the way to {})", u.what, sh.display()),
                        fix: format!(
                            "reinstall the shell so that {} is a root-owned program",
                            sh.display()
                        ),
                        path: u.path,
                        target: true,
                    });
                    flaws
                }
            }
        });
        let sh = genapp::INTERPRETER;
        self.chains.add(out, Some(tag), flaws, |f| {
            if f.target {
                format!("{sh} runs the lkhelpers wrappers as root, and this file is {}", f.what)
            } else {
                format!(
                    "{}, so someone other than root can change {sh}, which runs the lkhelpers wrappers as root",
                    f.what
                )
            }
        })
    }
}

/// Checks every gen/app resource under `opts.lkroot` that uses lkhelpers.
pub fn check(opts: &Options) -> Report {
    let mut report = Report::default();
    let mut ctx = Ctx {
        opts,
        probes: BTreeMap::new(),
        chains: Chains::default(),
        shell: None,
    };
    // LifeKeeper's root itself, then each directory gen/app keeps its copies in
    match trusted::judge(&opts.lkroot, Want::Dir) {
        Ok(j) => {
            ctx.chains.add(&mut report.findings, None, &j.flaws, below);
        }
        Err(u) => {
            ctx.chains.add(&mut report.findings, None, &u.flaws, below);
            if u.missing {
                report
                    .notes
                    .push(format!("{}: not there", opts.lkroot.display()));
            } else {
                report.findings.push(Finding::new(
                    Level::Error,
                    None,
                    &u.path,
                    format!(
                        "{} (on the way to LifeKeeper's root {}), so its gen/app resources were not checked",
                        u.what,
                        opts.lkroot.display()
                    ),
                    "give the real path with --lkroot, or fix the path".into(),
                ));
            }
        }
    }
    let mut tags: BTreeMap<OsString, TagFiles> = BTreeMap::new();
    let mut scsipr_tags: Vec<String> = Vec::new();
    for action in Action::ALL {
        let dir = genapp::copy_dir(&opts.lkroot, action);
        let judged = match trusted::judge(&dir, Want::Dir) {
            Ok(j) => j,
            Err(u) => {
                ctx.chains.add(&mut report.findings, None, &u.flaws, below);
                if u.missing {
                    report.notes.push(format!("{}: not there", dir.display()));
                } else {
                    report.findings.push(Finding::new(
                        Level::Error,
                        None,
                        &u.path,
                        format!(
                            "{} (on the way to {}), so its gen/app resources were not checked",
                            u.what,
                            dir.display()
                        ),
                        "make it the real directory gen/app keeps its copies in".into(),
                    ));
                }
                continue;
            }
        };
        ctx.chains
            .add(&mut report.findings, None, &judged.flaws, below);
        let entries = match fs::read_dir(&judged.real) {
            Ok(entries) => entries,
            Err(e) => {
                report.findings.push(Finding::new(
                    Level::Error,
                    None,
                    &dir,
                    format!("cannot be read ({e}), so its gen/app resources were not checked"),
                    "run check-lifekeeper as root".into(),
                ));
                continue;
            }
        };
        for e in entries.flatten() {
            let path = dir.join(e.file_name());
            let judged = classify(&path);
            tags.entry(e.file_name()).or_default().slots[slot(action)] =
                Some(Slot { path, judged });
        }
    }

    for (name, files) in &mut tags {
        let tag = name.to_string_lossy().into_owned();
        // a script in genapp's form without the marker is ours when it execs ours
        for s in files.slots.iter_mut().flatten() {
            if let Script::Candidate { exec, text } = &s.judged.script {
                let hint = kit_hint(&exec.binary, None);
                let b = ctx.probe(&exec.binary, &hint);
                s.judged.script = if b.ours {
                    Script::Wrapper {
                        exec: exec.clone(),
                        text: text.clone(),
                        marker: None,
                    }
                } else {
                    Script::Foreign(format!(
                        "a script that execs {}, which is not an lkhelpers binary",
                        exec.binary.display()
                    ))
                };
            }
        }
        let before = report.findings.len();
        let mut flawed = false;
        for s in files.slots.iter().flatten() {
            flawed |= ctx
                .chains
                .add(&mut report.findings, Some(&tag), &s.judged.flaws, copy_flaw);
        }
        if !files.slots.iter().flatten().any(|s| s.judged.script.ours()) {
            for s in files.slots.iter().flatten() {
                if let Script::Foreign(why) | Script::Unknown(why) | Script::Insecure(why) =
                    &s.judged.script
                {
                    report
                        .notes
                        .push(format!("{}: skipped: {why}", s.path.display()));
                }
            }
            continue;
        }
        report.tags += 1;
        let (tainted, kit) = check_tag(&mut ctx, &tag, files, &mut report);
        if kit.as_deref() == Some("scsipr") {
            scsipr_tags.push(tag.clone());
        }
        flawed |= tainted;
        if !flawed
            && report.findings[before..]
                .iter()
                .all(|f| f.level <= Level::Info)
        {
            let there: Vec<&str> = Action::ALL
                .iter()
                .zip(&files.slots)
                .filter(|(_, s)| s.is_some())
                .map(|(a, _)| a.name())
                .collect();
            let dir = opts.lkroot.join(genapp::APP_DIR);
            report.findings.insert(
                before,
                Finding::new(
                    Level::Ok,
                    Some(&tag),
                    &dir,
                    format!(
                        "resource {tag}: lkh-{} scripts {} are wired right and its configuration validates",
                        kit.as_deref().unwrap_or("?"),
                        there.join(", ")
                    ),
                    String::new(),
                ),
            );
        }
    }

    if report.tags > 0
        && let Some(p) = &opts.interval.problem
    {
        report.findings.push(Finding::new(
            Level::Warning,
            None,
            &opts.defaults,
            format!("{p} ({})", opts.interval.source),
            "set LKCHECKINTERVAL to the seconds between LifeKeeper's quickChecks, or remove the line".into(),
        ));
    }
    if !scsipr_tags.is_empty() {
        check_defender(&scsipr_tags, &mut report);
    }
    let old = opts.lkroot.join(OLD_LAYOUT);
    if fs::symlink_metadata(&old).is_ok() {
        report.findings.push(Finding::new(
            Level::Warning,
            None,
            &old,
            "left over from an earlier lkhelpers version (subsys/lkhelpers/Resources/…); LifeKeeper never calls it".into(),
            format!("remove it: rm -r {}", old.display()),
        ));
    }
    if report.tags == 0 {
        report.findings.push(Finding::new(
            Level::Info,
            None,
            &opts.lkroot.join(genapp::APP_DIR),
            "no gen/app resource uses lkhelpers on this node".into(),
            String::new(),
        ));
    }
    report
}

/// lkh-scsipr resources are wired on this node: its defender (`lkh-scsipr watch`, which holds
/// `<run dir>/scsipr/watch.pid` while it runs and renews it every second) must run here, or a
/// node that stops hearing this one takes the disks this node holds after the challenge
/// window. A standby node needs it as much: it is the holder after a failover.
fn check_defender(tags: &[String], report: &mut Report) {
    let run = lkh_common::runstate::RunDir::new("scsipr");
    let file = run.path().join("watch.pid");
    let (level, what) = match run.daemon("watch") {
        Ok(Some(d)) if d.since_beat.is_some_and(|a| a.as_secs() < 10) => (
            Level::Ok,
            format!(
                "lkh-scsipr watch (pid {}) runs and defends the disks of {}",
                d.pid,
                tags.join(", ")
            ),
        ),
        Ok(Some(d)) => (
            Level::Warning,
            format!(
                "lkh-scsipr watch (pid {}) has not ticked for {} s: it is stopped or stuck, so nothing defends the disks of {} this node holds",
                d.pid,
                d.since_beat.map_or("?".into(), |a| a.as_secs().to_string()),
                tags.join(", ")
            ),
        ),
        Ok(None) => (
            Level::Warning,
            format!(
                "no lkh-scsipr watch runs on this node: nothing defends the disks of {} while this node holds them (a node that stops hearing this one takes them after the challenge window) and nothing acts on ON_FENCED",
                tags.join(", ")
            ),
        ),
        Err(f) => (
            Level::Warning,
            format!("cannot tell whether lkh-scsipr watch runs: {f}"),
        ),
    };
    let remedy = if level == Level::Ok {
        String::new()
    } else {
        "systemctl enable --now lkh-scsipr-watch (or restart it)".into()
    };
    report
        .findings
        .push(Finding::new(level, None, &file, what, remedy));
}

/// The kit to name in remedies for a wrapper: its marker's, else the binary's file name
/// without `lkh-`, else `<kit>`.
fn kit_hint(binary: &Path, marker: Option<&Wrapper>) -> String {
    if let Some(m) = marker {
        return m.kit.clone();
    }
    binary
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("lkh-"))
        .filter(|k| !k.is_empty())
        .unwrap_or("<kit>")
        .to_owned()
}

/// Findings about one tag; `flawed` when a chain finding (maybe reported under another tag)
/// concerns one of its files.
struct TagReport<'a> {
    tag: &'a str,
    findings: &'a mut Vec<Finding>,
    flawed: bool,
}

impl TagReport<'_> {
    fn push(&mut self, level: Level, file: &Path, what: String, remedy: String) {
        self.findings
            .push(Finding::new(level, Some(self.tag), file, what, remedy));
    }
}

/// The wrapper of `action` that `lkh-<kit> genapp` writes, for remedies.
fn genapp_wrapper(kit: &str, action: Action) -> String {
    format!(
        "the {} wrapper `lkh-{kit} genapp` writes (by default {})",
        action.name(),
        genapp::default_dir(kit).join(action.name()).display()
    )
}

/// What can run `validate`: the judged descriptor, the path to name, the kit.
type Runner = (Arc<File>, PathBuf, String);

/// Checks one tag; returns whether a chain finding concerns it, and its kit.
fn check_tag(
    ctx: &mut Ctx,
    tag: &str,
    files: &TagFiles,
    report: &mut Report,
) -> (bool, Option<String>) {
    let mut r = TagReport {
        tag,
        findings: &mut report.findings,
        flawed: false,
    };
    // the kit of each script, and a program that can run `validate` (a checked binary or copy)
    let mut kits: Vec<(String, Action)> = Vec::new();
    let mut runner: Option<Runner> = None;
    for (action, s) in Action::ALL
        .into_iter()
        .zip(&files.slots)
        .filter_map(|(a, s)| s.as_ref().map(|s| (a, s)))
    {
        if let Some(kit) = check_script(ctx, &mut r, action, s, &mut runner) {
            kits.push((kit, action));
        }
    }
    let first_file = files
        .slots
        .iter()
        .flatten()
        .next()
        .map(|s| s.path.clone())
        .unwrap_or_default();
    let mut distinct: Vec<&str> = kits.iter().map(|(k, _)| k.as_str()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() > 1 {
        let list: Vec<String> = kits
            .iter()
            .map(|(k, a)| format!("lkh-{k} in !{}", a.name()))
            .collect();
        r.push(
            Level::Error,
            &first_file,
            format!(
                "the scripts of resource {tag} belong to different kits ({})",
                list.join(", ")
            ),
            "re-create the resource with the wrappers of one kit".into(),
        );
    }
    let hint = distinct.first().map(|k| k.to_string()).or_else(|| {
        files
            .slots
            .iter()
            .flatten()
            .find_map(|s| match &s.judged.script {
                Script::Wrapper { exec, marker, .. } => {
                    Some(kit_hint(&exec.binary, marker.as_ref()))
                }
                Script::Broken { marker, .. } => Some(marker.kit.clone()),
                _ => None,
            })
    });
    check_presence(ctx.opts, &mut r, files, hint.as_deref().unwrap_or("<kit>"));
    if let Err(f) = Tag::parse(tag) {
        r.push(
            Level::Error,
            &first_file,
            format!("{f}, so lkhelpers cannot name its configuration file"),
            "re-create the resource with a tag of letters, digits, '.', '_' and '-'".into(),
        );
    } else if let Some(runner) = &runner {
        check_config(ctx.opts, &mut r, runner);
    }
    let kit = (distinct.len() == 1).then(|| distinct[0].to_owned());
    (r.flawed, kit)
}

/// Checks one script; returns its kit when it is ours and its kit is known.
fn check_script(
    ctx: &mut Ctx,
    r: &mut TagReport,
    action: Action,
    s: &Slot,
    runner: &mut Option<Runner>,
) -> Option<String> {
    let path = &s.path;
    if let Some(to) = &s.judged.link
        && s.judged.script.ours()
    {
        r.push(
            Level::Warning,
            path,
            format!(
                "is a symbolic link (to {}), but gen/app keeps copies: something other than the wizard put it there",
                Path::new(to).display()
            ),
            "replace it with a copy of the file it points to (cp --remove-destination TARGET LINK)"
                .into(),
        );
    }
    match &s.judged.script {
        Script::Wrapper { exec, text, marker } => {
            let hint = kit_hint(&exec.binary, marker.as_ref());
            if let Some(m) = &s.judged.meta
                && !executable(m)
            {
                r.push(
                    Level::Error,
                    path,
                    "is not executable, so LifeKeeper cannot run it".into(),
                    format!("chmod 755 {}", path.display()),
                );
            }
            r.flawed |= ctx.shell(r.findings, r.tag);
            if exec.action != action {
                r.push(
                    Level::Error,
                    path,
                    format!(
                        "is the {} wrapper, but LifeKeeper runs it to {}: the wizard's {} field got the wrong file (line {} passes {})",
                        exec.action.name(),
                        action.name(),
                        genapp::wizard_field(action),
                        exec.line,
                        exec.action.name(),
                    ),
                    format!(
                        "re-create the resource with {} in the {} field, or copy that file over this one on every node",
                        genapp_wrapper(&hint, action),
                        genapp::wizard_field(action)
                    ),
                );
            }
            let bin = exec.binary.clone();
            let b = ctx.probe(&bin, &hint).clone();
            r.flawed |= ctx.chains.add(r.findings, Some(r.tag), &b.way, |f| {
                format!(
                    "{}, so someone other than root can replace {}, which {} execs as root",
                    f.what,
                    bin.display(),
                    path.display()
                )
            });
            if let Some((what, fix)) = &b.problem {
                r.push(
                    Level::Error,
                    path,
                    format!("line {} execs {}, {what}", exec.line, bin.display()),
                    fix.clone(),
                );
            }
            let (kit, file) = (b.kit?, b.file?);
            if kit == NOT_A_KIT {
                r.push(
                    Level::Error,
                    path,
                    format!(
                        "line {} execs {}, which is lkh-{kit}: it has no LifeKeeper actions",
                        exec.line,
                        bin.display()
                    ),
                    format!(
                        "re-create the resource with the wrappers `lkh-<kit> genapp` writes (its {} wrapper in the {} field)",
                        action.name(),
                        genapp::wizard_field(action)
                    ),
                );
                return None;
            }
            runner.get_or_insert_with(|| (file, bin.clone(), kit.clone()));
            let genapps = Wrapper {
                kit: kit.clone(),
                action: exec.action,
                binary: bin.clone(),
            };
            if *text != genapps.render() {
                let claim = match marker {
                    Some(m) if *m != genapps => format!(
                        "; its marker comment says kit={} action={} binary={}, but line {} runs lkh-{kit} {} from {}",
                        m.kit,
                        m.action.name(),
                        m.binary.display(),
                        exec.line,
                        exec.action.name(),
                        bin.display()
                    ),
                    _ => String::new(),
                };
                r.push(
                    Level::Warning,
                    path,
                    format!(
                        "differs from the wrapper genapp writes for what it runs (edited by hand?){claim}"
                    ),
                    format!(
                        "run `lkh-{kit} genapp` and copy its {} wrapper over this file on every node",
                        exec.action.name()
                    ),
                );
            }
            Some(kit)
        }
        Script::Broken { why, marker } => {
            r.push(
                Level::Error,
                path,
                format!(
                    "{}; LifeKeeper runs this line as root, whatever the marker comment says",
                    why.message()
                ),
                format!(
                    "run `lkh-{} genapp` and copy its {} wrapper over this file on every node",
                    marker.kit,
                    action.name()
                ),
            );
            None
        }
        Script::Copy {
            name,
            version,
            file,
        } => {
            let kit = name.strip_prefix("lkh-").unwrap_or(name).to_owned();
            if kit == NOT_A_KIT {
                r.push(
                    Level::Error,
                    path,
                    format!("is a copy of {name} ({version}), which has no LifeKeeper actions"),
                    format!(
                        "re-create the resource with the wrappers `lkh-<kit> genapp` writes (its {} wrapper in the {} field)",
                        action.name(),
                        genapp::wizard_field(action)
                    ),
                );
                return None;
            }
            r.push(
                Level::Warning,
                path,
                format!(
                    "is a copy of the {name} binary ({version}): it works (the action comes from the !{} directory) but goes stale when {name} is upgraded",
                    action.name()
                ),
                format!(
                    "run `{name} genapp` and re-create the resource with its wrappers (or copy the {} wrapper over this file on every node)",
                    action.name()
                ),
            );
            runner.get_or_insert_with(|| (file.clone(), path.to_path_buf(), kit.clone()));
            Some(kit)
        }
        Script::Insecure(why) => {
            r.push(
                Level::Error,
                path,
                format!("{why}; not run"),
                "fix the errors that name its path".into(),
            );
            None
        }
        Script::Foreign(why) | Script::Unknown(why) => {
            r.push(
                Level::Warning,
                path,
                format!("{why}, while this resource's other scripts are lkhelpers'"),
                "check what this file is; re-create the resource with the wrappers `lkh-<kit> genapp` writes".into(),
            );
            None
        }
        Script::Candidate { .. } => None,
    }
}

/// Restore and remove are required; quickCheck and recover are optional to LifeKeeper.
fn check_presence(opts: &Options, r: &mut TagReport, files: &TagFiles, kit: &str) {
    let tag = r.tag;
    let absent: Vec<Action> = Action::ALL
        .into_iter()
        .filter(|a| files.slots[slot(*a)].is_none())
        .collect();
    for a in absent {
        let (level, what, remedy) = match a {
            Action::Restore => (
                Level::Error,
                format!("resource {tag} has no restore script, so LifeKeeper cannot bring it in service"),
                format!("re-create the resource with {} as Restore Script", genapp_wrapper(kit, a)),
            ),
            Action::Remove => (
                Level::Error,
                format!("resource {tag} has no remove script, so LifeKeeper cannot take it out of service"),
                format!("re-create the resource with {} as Remove Script", genapp_wrapper(kit, a)),
            ),
            Action::QuickCheck => (
                Level::Warning,
                "LifeKeeper will assume the resource is always healthy: failures are never detected".into(),
                format!("re-create the resource with {}", genapp_wrapper(kit, a)),
            ),
            Action::Recover => (
                Level::Info,
                "a quickCheck failure fails the resource over at once, without local recovery".into(),
                format!(
                    "to try local recovery first, re-create the resource with {} as Local Recovery Script",
                    genapp_wrapper(kit, a)
                ),
            ),
        };
        let path = genapp::copy_path(&opts.lkroot, a, tag);
        r.push(level, &path, format!("is missing: {what}"), remedy);
    }
}

/// `validate -t TAG` passes and the kit's TIMEOUT stays below LKCHECKINTERVAL.
fn check_config(opts: &Options, r: &mut TagReport, runner: &Runner) {
    let (file, program, kit) = runner;
    let program = program.as_path();
    let tag = r.tag;
    let name = format!("lkh-{kit}");
    let conf = opts.conf_dir.join(format!("{tag}.conf"));
    let env = [("LKHELPERS_LK_DEFAULTS", opts.defaults.as_path())];
    let ran = match run(file, &["validate", "-t", tag], &env, RUN_BUDGET) {
        Ok(ran) => ran,
        Err(e) => {
            return r.push(
                Level::Error,
                program,
                format!("cannot run `{name} validate -t {tag}`: {e}"),
                format!("reinstall {name}"),
            );
        }
    };
    match ran.status.and_then(|s| s.code()) {
        Some(0) => {}
        Some(2) => {
            return r.push(
                Level::Error,
                &conf,
                format!(
                    "the configuration of resource {tag} is missing or invalid: {}",
                    ran.reason()
                ),
                format!(
                    "write or fix {}, then check it with `{name} validate -t {tag}`",
                    conf.display()
                ),
            );
        }
        _ => {
            return r.push(
                Level::Error,
                &conf,
                format!("`{name} validate -t {tag}` {}", ran.failure()),
                format!("run `{name} validate -t {tag}` by hand and fix what it says"),
            );
        }
    }
    let timeout = ran
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("TIMEOUT="))
        .and_then(|v| v.trim().parse::<u64>().ok());
    let iv = &opts.interval;
    match timeout {
        Some(t) if t >= iv.seconds => r.push(
            Level::Error,
            &conf,
            format!(
                "resource {tag}: TIMEOUT={t} is not below LKCHECKINTERVAL={} ({}), so a hung quickCheck is still running when the next one is due",
                iv.seconds, iv.source
            ),
            format!(
                "lower TIMEOUT in {} below {}, or raise LKCHECKINTERVAL in {}",
                conf.display(),
                iv.seconds,
                opts.defaults.display()
            ),
        ),
        Some(_) => {}
        None => r.push(
            Level::Info,
            &conf,
            format!(
                "`{name} validate -t {tag}` printed no TIMEOUT=, so it cannot be compared with LKCHECKINTERVAL"
            ),
            String::new(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_interval_default_value_and_garbage() {
        let f = Path::new("/etc/default/LifeKeeper");
        let d = CheckInterval::from_defaults(f, "A=1\n");
        assert_eq!((d.seconds, d.problem.is_none()), (120, true));
        let v = CheckInterval::from_defaults(f, "A=1\nLKCHECKINTERVAL=30\n");
        assert_eq!(
            (v.seconds, v.source.as_str()),
            (30, "/etc/default/LifeKeeper:2")
        );
        let g = CheckInterval::from_defaults(f, "LKCHECKINTERVAL=soon\n");
        assert_eq!(g.seconds, 120);
        assert!(g.problem.unwrap().contains("\"soon\""));
        assert!(
            CheckInterval::from_defaults(f, "LKCHECKINTERVAL=0\n")
                .problem
                .is_some()
        );
    }

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

    #[test]
    fn text_files_that_are_not_wrappers_are_foreign() {
        let f = std::env::temp_dir().join(format!("lkh-wiring-sh-{}", std::process::id()));
        fs::write(&f, "#!/bin/sh\necho hi\n").unwrap();
        let foreign = |f: &Path| match classify(f).script {
            Script::Foreign(why) => why,
            other => panic!("{other:?}"),
        };
        assert_eq!(foreign(&f), "not an lkhelpers wrapper");
        fs::write(&f, "x".repeat(MAX_WRAPPER_LEN + 10)).unwrap();
        foreign(&f);
        // genapp's form without its marker: a candidate, decided by what it execs
        fs::write(&f, "#!/bin/sh\nexec /opt/db/bin/start restore \"$@\"\n").unwrap();
        assert!(matches!(classify(&f).script, Script::Candidate { .. }));
        let _ = fs::remove_file(&f);
        assert!(matches!(classify(&f).script, Script::Unknown(_)));
    }
}
