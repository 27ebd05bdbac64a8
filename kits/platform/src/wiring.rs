//! Is each gen/app resource that uses lkhelpers wired right on this node?
//!
//! LifeKeeper's Generic Application kit copies the scripts given to its wizard into
//! `$LKROOT/subsys/gen/resources/app/actions/!<action>/<tag>` (recover: `…/recovery/!recover/`)
//! and runs the copies as root with `-t <tag> -i <id>`. lkhelpers hands the wizard the small
//! wrappers `lkh-<kit> genapp` writes ([`lkh_common::genapp`]). A wrong answer in the wizard (the
//! remove wrapper in the Restore field, no quickCheck), an uninstalled binary, a missing
//! `/etc/lkhelpers/<tag>.conf` or a `TIMEOUT` longer than LifeKeeper's check interval all only
//! show at failover time; this module finds them beforehand, one [`Finding`] each.
//!
//! What it runs, and why that is safe: a wrapper is only read (its marker line names the
//! binary); the named binary, or a copy of a kit binary, is run with `--version` and
//! `validate -t <tag>` only, always with argv\[0\] set to [`ARGV0`] (a binary called through
//! `…/!restore/<tag>` would otherwise perform restore), bounded by [`RUN_BUDGET`], and only
//! when it is a regular, executable file owned by root (or by us when not root) and not
//! writable by group or others. An ELF file is run only when it also contains a string every
//! lkhelpers binary has ([`BINARY_MARKER`]), so other applications' programs are never started.
//! Shell scripts that are not our wrappers belong to other gen/app resources and are skipped.
//!
//! Mechanism only: findings are returned, never printed.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lkh_common::genapp::{self, MAX_WRAPPER_LEN, Wrapper};
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
    /// Owners trusted to provide programs we run: root, and our own uid when not root.
    pub trusted_uids: Vec<u32>,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// One of our wrappers; `text` is the file's content.
    Wrapper { wrapper: Wrapper, text: String },
    /// A copy of an lkhelpers binary; `name` is `lkh-<kit>` and `version` its `--version` line.
    Copy { name: String, version: String },
    /// Not ours (another application's script or program).
    Foreign(String),
    /// Could not be judged (unreadable, a dangling link, not a regular file).
    Unknown(String),
    /// An executable LifeKeeper runs as root that others could have changed: not run.
    Insecure(String),
}

/// A file's ownership and mode problems for something run as root, if any.
fn trust_problem(m: &fs::Metadata, trusted: &[u32]) -> Option<String> {
    if !trusted.contains(&m.uid()) {
        Some(format!(
            "owned by uid {}, not root, so its owner can change what runs as root",
            m.uid()
        ))
    } else if m.mode() & 0o022 != 0 {
        Some(format!(
            "writable by group or others (mode {:04o})",
            m.mode() & 0o7777
        ))
    } else {
        None
    }
}

fn executable(m: &fs::Metadata) -> bool {
    m.mode() & 0o111 != 0
}

/// Opens `path` for reading without blocking on FIFOs; `follow` allows a final symlink.
fn open_regular(path: &Path, follow: bool) -> io::Result<(fs::File, fs::Metadata)> {
    let mut flags = libc::O_NONBLOCK;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)?;
    let m = f.metadata()?;
    if !m.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok((f, m))
}

/// Whether `f` contains `needle`, reading at most [`MAX_SCAN`] bytes.
fn contains(f: &mut fs::File, needle: &[u8]) -> bool {
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

/// Reads and classifies the file at `path` (a gen/app copy). Never runs a wrapper; runs an
/// ELF file with `--version` only under the rules in the module docs.
pub fn classify(path: &Path, trusted: &[u32]) -> Script {
    let link = match fs::symlink_metadata(path) {
        Ok(m) => m.file_type().is_symlink(),
        Err(e) => return Script::Unknown(format!("cannot inspect: {e}")),
    };
    let (mut f, m) = match open_regular(path, link) {
        Ok(x) => x,
        Err(e) if link => {
            return Script::Unknown(format!(
                "a symbolic link (to {}) that cannot be read as a file: {e}",
                fs::read_link(path).unwrap_or_default().display()
            ));
        }
        Err(e) => return Script::Unknown(format!("cannot read: {e}")),
    };
    let mut head = Vec::new();
    if let Err(e) = (&mut f)
        .take(MAX_WRAPPER_LEN as u64 + 1)
        .read_to_end(&mut head)
    {
        return Script::Unknown(format!("cannot read: {e}"));
    }
    if head.starts_with(b"\x7fELF") {
        if let Some(why) = trust_problem(&m, trusted) {
            return Script::Insecure(why);
        }
        if !executable(&m) {
            return Script::Foreign("an ELF file without execute permission".into());
        }
        let ours = head
            .windows(BINARY_MARKER.len())
            .any(|w| w == BINARY_MARKER)
            || contains(&mut f, BINARY_MARKER);
        if !ours {
            return Script::Foreign("an ELF program that is not an lkhelpers binary".into());
        }
        return match run(path, &["--version"], &[], RUN_BUDGET) {
            Ok(r) if r.status.is_some_and(|s| s.success()) => {
                let line = r.stdout.lines().next().unwrap_or_default().to_owned();
                match line.split_once(' ') {
                    Some((name, _)) if name.starts_with("lkh-") => Script::Copy {
                        name: name.to_owned(),
                        version: line,
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
    let text = (head.len() <= MAX_WRAPPER_LEN)
        .then(|| String::from_utf8(head).ok())
        .flatten();
    match text.as_deref().and_then(Wrapper::parse) {
        Some(wrapper) => Script::Wrapper {
            wrapper,
            text: text.unwrap_or_default(),
        },
        None => Script::Foreign("not an lkhelpers wrapper".into()),
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

/// Runs `program args` with argv\[0\] [`ARGV0`], stdin from /dev/null, the environment
/// passed through plus `env`, in its own process group. At `budget` the group is killed
/// and [`Ran::status`] is `None`. Returns within `budget` plus about a second.
pub fn run(
    program: &Path,
    args: &[&str],
    env: &[(&str, &Path)],
    budget: Duration,
) -> io::Result<Ran> {
    let deadline = Instant::now() + budget;
    let mut cmd = Command::new(program);
    cmd.arg0(ARGV0)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
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

/// What `<binary> --version` told about a binary a wrapper names.
type Probe = Result<(), (Level, String, String)>;

/// Checks the binary a wrapper execs: there, a regular executable file, trusted, of `kit`.
fn probe_binary(bin: &Path, kit: &str, trusted: &[u32]) -> Probe {
    let name = format!("lkh-{kit}");
    let reinstall = format!(
        "install {name} at {} again, or run `{name} genapp` from where it is now and copy its wrappers over LifeKeeper's copies on every node",
        bin.display()
    );
    let err = |what: String, fix: String| Err((Level::Error, what, fix));
    if !bin.is_absolute() {
        return err(
            format!(
                "names the binary {}, which is not an absolute path",
                bin.display()
            ),
            reinstall,
        );
    }
    let m = match fs::metadata(bin) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return err(
                format!(
                    "execs {}, which does not exist (was {name} removed or moved?), so every action of this resource fails",
                    bin.display()
                ),
                reinstall,
            );
        }
        Err(e) => {
            return err(
                format!("execs {}, which cannot be inspected: {e}", bin.display()),
                reinstall,
            );
        }
    };
    if !m.is_file() {
        return err(
            format!("execs {}, which is not a regular file", bin.display()),
            reinstall,
        );
    }
    if !executable(&m) {
        return err(
            format!("execs {}, which is not executable", bin.display()),
            format!("chmod 755 {}", bin.display()),
        );
    }
    if let Some(why) = trust_problem(&m, trusted) {
        return err(
            format!("execs {}, which is {why}; not run", bin.display()),
            format!("chown root:root {0}; chmod go-w {0}", bin.display()),
        );
    }
    match run(bin, &["--version"], &[], RUN_BUDGET) {
        Err(e) => err(
            format!("execs {}, which cannot be run: {e}", bin.display()),
            reinstall,
        ),
        Ok(r) if !r.status.is_some_and(|s| s.success()) => err(
            format!("execs {}, whose `--version` {}", bin.display(), r.failure()),
            reinstall,
        ),
        Ok(r) if !r.stdout.starts_with(&format!("{name} ")) => err(
            format!(
                "execs {}, which is not {name}: `--version` says {:?}",
                bin.display(),
                r.stdout.lines().next().unwrap_or_default()
            ),
            format!(
                "run `{name} genapp` and copy its wrappers over LifeKeeper's copies on every node"
            ),
        ),
        Ok(_) => Ok(()),
    }
}

/// One tag's four slots (restore, remove, quickCheck, recover), each with its path.
struct TagFiles {
    slots: [Option<(PathBuf, Script)>; 4],
}

fn slot(action: Action) -> usize {
    Action::ALL.iter().position(|a| *a == action).unwrap_or(0)
}

/// Checks every gen/app resource under `opts.lkroot` that uses lkhelpers.
pub fn check(opts: &Options) -> Report {
    let mut report = Report::default();
    let trusted = &opts.trusted_uids;
    let mut tags: BTreeMap<OsString, TagFiles> = BTreeMap::new();
    for action in Action::ALL {
        let dir = genapp::copy_dir(&opts.lkroot, action);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                report.notes.push(format!("{}: not there", dir.display()));
                continue;
            }
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
            let path = e.path();
            let script = classify(&path, trusted);
            tags.entry(e.file_name())
                .or_insert_with(|| TagFiles {
                    slots: [None, None, None, None],
                })
                .slots[slot(action)] = Some((path, script));
        }
    }

    let mut probes: BTreeMap<(PathBuf, String), Probe> = BTreeMap::new();
    for (name, files) in &tags {
        let ours = files
            .slots
            .iter()
            .flatten()
            .any(|(_, s)| matches!(s, Script::Wrapper { .. } | Script::Copy { .. }));
        let tag = name.to_string_lossy();
        if !ours {
            for (path, s) in files.slots.iter().flatten() {
                match s {
                    Script::Insecure(why) => report.findings.push(Finding::new(
                        Level::Error,
                        Some(&tag),
                        path,
                        format!("LifeKeeper runs this program as root, and it is {why}"),
                        secure(path),
                    )),
                    Script::Foreign(why) | Script::Unknown(why) => report
                        .notes
                        .push(format!("{}: skipped: {why}", path.display())),
                    _ => {}
                }
            }
            continue;
        }
        report.tags += 1;
        let before = report.findings.len();
        check_tag(opts, &tag, files, &mut probes, &mut report);
        if report.findings[before..]
            .iter()
            .all(|f| f.level <= Level::Info)
        {
            let kits: Vec<String> = files
                .slots
                .iter()
                .flatten()
                .filter_map(|(_, s)| kit_of(s))
                .collect();
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
                        kits.first().map_or("?", String::as_str),
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

/// The kit (`nas`) a wrapper or copy belongs to.
fn kit_of(s: &Script) -> Option<String> {
    match s {
        Script::Wrapper { wrapper, .. } => Some(wrapper.kit.clone()),
        Script::Copy { name, .. } => name.strip_prefix("lkh-").map(str::to_owned),
        _ => None,
    }
}

/// Findings about one tag.
struct TagReport<'a> {
    tag: &'a str,
    findings: &'a mut Vec<Finding>,
}

impl TagReport<'_> {
    fn push(&mut self, level: Level, file: &Path, what: String, remedy: String) {
        self.findings
            .push(Finding::new(level, Some(self.tag), file, what, remedy));
    }
}

fn secure(path: &Path) -> String {
    format!("chown root:root {0}; chmod go-w {0}", path.display())
}

/// The wrapper of `action` that `lkh-<kit> genapp` writes, for remedies.
fn genapp_wrapper(kit: &str, action: Action) -> String {
    format!(
        "the {} wrapper `lkh-{kit} genapp` writes (by default {})",
        action.name(),
        genapp::default_dir(kit).join(action.name()).display()
    )
}

fn check_tag(
    opts: &Options,
    tag: &str,
    files: &TagFiles,
    probes: &mut BTreeMap<(PathBuf, String), Probe>,
    report: &mut Report,
) {
    let mut r = TagReport {
        tag,
        findings: &mut report.findings,
    };
    // the kit of each script, and a program that can run `validate` (a checked binary or copy)
    let mut kits: Vec<(String, Action)> = Vec::new();
    let mut runner: Option<(PathBuf, String)> = None;
    for (action, (path, script)) in Action::ALL
        .into_iter()
        .zip(&files.slots)
        .filter_map(|(a, s)| s.as_ref().map(|s| (a, s)))
    {
        if let Some(kit) = check_script(opts, &mut r, action, path, script, probes, &mut runner) {
            kits.push((kit, action));
        }
    }
    let first_file = files
        .slots
        .iter()
        .flatten()
        .next()
        .map(|(p, _)| p.clone())
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
    check_presence(
        opts,
        &mut r,
        files,
        distinct.first().copied().unwrap_or("<kit>"),
    );
    if let Err(f) = Tag::parse(tag) {
        r.push(
            Level::Error,
            &first_file,
            format!("{f}, so lkhelpers cannot name its configuration file"),
            "re-create the resource with a tag of letters, digits, '.', '_' and '-'".into(),
        );
    } else if let Some((program, kit)) = runner {
        check_config(opts, &mut r, &program, &kit);
    }
}

/// Checks one script; returns its kit when it is ours.
fn check_script(
    opts: &Options,
    r: &mut TagReport,
    action: Action,
    path: &Path,
    script: &Script,
    probes: &mut BTreeMap<(PathBuf, String), Probe>,
    runner: &mut Option<(PathBuf, String)>,
) -> Option<String> {
    let trusted = &opts.trusted_uids;
    if let Ok(m) = fs::symlink_metadata(path)
        && m.file_type().is_symlink()
        && matches!(script, Script::Wrapper { .. } | Script::Copy { .. })
    {
        r.push(
            Level::Warning,
            path,
            format!(
                "is a symbolic link (to {}), but gen/app keeps copies: something other than the wizard put it there",
                fs::read_link(path).unwrap_or_default().display()
            ),
            "replace it with a copy of the file it points to (cp --remove-destination TARGET LINK)"
                .into(),
        );
    }
    match script {
        Script::Wrapper { wrapper, text } => {
            let name = format!("lkh-{}", wrapper.kit);
            if let Ok(m) = fs::metadata(path) {
                if let Some(why) = trust_problem(&m, trusted) {
                    r.push(
                        Level::Error,
                        path,
                        format!("LifeKeeper runs this wrapper as root, and it is {why}"),
                        secure(path),
                    );
                }
                if !executable(&m) {
                    r.push(
                        Level::Error,
                        path,
                        "is not executable, so LifeKeeper cannot run it".into(),
                        format!("chmod 755 {}", path.display()),
                    );
                }
            }
            if wrapper.action != action {
                r.push(
                    Level::Error,
                    path,
                    format!(
                        "is the {} wrapper, but LifeKeeper runs it to {}: the wizard's {} field got the wrong file",
                        wrapper.action.name(),
                        action.name(),
                        genapp::wizard_field(action)
                    ),
                    format!(
                        "re-create the resource with {} in the {} field, or copy that file over this one on every node",
                        genapp_wrapper(&wrapper.kit, action),
                        genapp::wizard_field(action)
                    ),
                );
            }
            if *text != wrapper.render() {
                r.push(
                    Level::Warning,
                    path,
                    "differs from the wrapper genapp writes for its own marker line (edited by hand?)"
                        .into(),
                    format!(
                        "run `{name} genapp` and copy its {} wrapper over this file on every node",
                        wrapper.action.name()
                    ),
                );
            }
            let probe = probes
                .entry((wrapper.binary.clone(), wrapper.kit.clone()))
                .or_insert_with(|| probe_binary(&wrapper.binary, &wrapper.kit, trusted));
            match probe {
                Ok(()) => {
                    runner.get_or_insert_with(|| (wrapper.binary.clone(), wrapper.kit.clone()));
                }
                Err((level, what, fix)) => r.push(*level, path, what.clone(), fix.clone()),
            }
            Some(wrapper.kit.clone())
        }
        Script::Copy { name, version } => {
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
            runner.get_or_insert_with(|| (path.to_path_buf(), kit.clone()));
            Some(kit)
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
        Script::Insecure(why) => {
            r.push(
                Level::Error,
                path,
                format!("LifeKeeper runs this program as root, and it is {why}; not run"),
                secure(path),
            );
            None
        }
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
fn check_config(opts: &Options, r: &mut TagReport, program: &Path, kit: &str) {
    let tag = r.tag;
    let name = format!("lkh-{kit}");
    let conf = opts.conf_dir.join(format!("{tag}.conf"));
    let env = [("LKHELPERS_LK_DEFAULTS", opts.defaults.as_path())];
    let ran = match run(program, &["validate", "-t", tag], &env, RUN_BUDGET) {
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
        assert!(contains(&mut fs::File::open(&dir).unwrap(), BINARY_MARKER));
        fs::write(&dir, vec![b'x'; 200 << 10]).unwrap();
        assert!(!contains(&mut fs::File::open(&dir).unwrap(), BINARY_MARKER));
        let _ = fs::remove_file(&dir);
    }

    #[test]
    fn text_files_that_are_not_wrappers_are_foreign() {
        let f = std::env::temp_dir().join(format!("lkh-wiring-sh-{}", std::process::id()));
        fs::write(&f, "#!/bin/sh\necho hi\n").unwrap();
        let me = [nix::unistd::geteuid().as_raw()];
        assert_eq!(
            classify(&f, &me),
            Script::Foreign("not an lkhelpers wrapper".into())
        );
        fs::write(&f, "x".repeat(MAX_WRAPPER_LEN + 10)).unwrap();
        assert!(matches!(classify(&f, &me), Script::Foreign(_)));
        let _ = fs::remove_file(&f);
        assert!(matches!(classify(&f, &me), Script::Unknown(_)));
    }
}
