//! restore / remove / quickCheck / recover, and the one assessment of the resource
//! ([`assess`]) that quickCheck, recover and `status` share.
//!
//! The assessment runs three checks and names each one that fails:
//! 1. "not mounted": mountinfo has no mount of SERVER:EXPORT at MOUNTPOINT
//!    with the configured version and key options;
//! 2. "server not answering": the network probe failed by the deadline. v3:
//!    NFS NULL + GETATTR of the export's root handle on the NFS port, both
//!    recorded by restore or an earlier full chain (`settings::Learnt`), beside
//!    MOUNT NULL on the MOUNT port, which only warns ("new mounts would fail;
//!    this one works") unless one full chain within 2 s finds MOUNT moved; a
//!    stale handle or a changed port runs the full chain once (portmapper, MOUNT
//!    MNT, NFS NULL + GETATTR), whose findings are recorded (by quickCheck and recover,
//!    never by `status`: the assessment changes nothing), as after a check with nothing
//!    recorded. v4: NULL + COMPOUND. A reply no RPC server sends is "server sent
//!    a malformed reply";
//! 3. "mount wedged": the IO check child did not finish (or an earlier one is
//!    still stuck), or failed with an error; ESTALE is "the export's file handle is
//!    stale (the server changed the export)", which recover repairs by mounting afresh.
//!
//! The IO check child runs while this thread probes the server, so the whole
//! check takes about as long as the slower of the two, never past TIMEOUT;
//! no thread is started (a quickCheck every few seconds should cost little).

use std::borrow::Cow;

use lkh_common::{Action, Assessment, Failure, HookCtx, Outcome};
use nas::ops::{self, Method, State};
use nas::probe::{self, FailKind, Probe};
use nas::{IoCheck, IoOutcome, Version, mountinfo};

use crate::settings::{self, Learnt, Settings};

pub fn hook(ctx: &HookCtx) -> Outcome {
    let how = match ctx.action {
        Action::Restore => settings::Resolve::Now,
        Action::Remove | Action::QuickCheck => settings::Resolve::Never,
        Action::Recover => settings::Resolve::Recorded,
    };
    let s = Settings::from_ctx(ctx, how)?;
    match ctx.action {
        Action::Restore => restore(&s),
        Action::Remove => remove(&s),
        Action::QuickCheck => {
            let h = assess(&s)?;
            record(&s, &h);
            h.outcome()
        }
        Action::Recover => recover(&s),
    }
}

pub fn mounts() -> Result<Vec<mountinfo::MountEntry>, Failure> {
    mountinfo::read_self()
        .map_err(|e| Failure::failed(format!("cannot read /proc/self/mountinfo: {e}")))
}

fn server_label(s: &Settings) -> String {
    let server = if s.server_known {
        s.cfg.server.to_string()
    } else {
        s.server_name.clone()
    };
    format!("{server} (NFS v{})", s.cfg.version)
}

/// Which of the three checks found a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// mountinfo: SERVER:EXPORT at MOUNTPOINT, as configured and negotiated.
    Mount,
    /// The server probe.
    Server,
    /// The IO check child.
    Io,
}

/// One failed check: which, its verdict in a few words, and quickCheck's message for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub check: Check,
    pub verdict: &'static str,
    pub message: String,
}

impl Problem {
    fn new(check: Check, verdict: &'static str, message: String) -> Problem {
        Problem {
            check,
            verdict,
            message,
        }
    }
}

/// What one look at the resource found: quickCheck's answer, recover's starting point and
/// all `status` shows.
#[derive(Debug, Clone)]
pub struct Health {
    /// What was checked: SERVER:EXPORT at MOUNTPOINT in VERSION, the server check (which
    /// conversation was held, e.g. with the handle learnt at restore) and the IO check.
    pub source: String,
    pub mount_point: String,
    pub version: Version,
    /// VERSION=4: the minor version restore negotiated, which the mount must still be.
    pub negotiated: Option<Version>,
    pub server: String,
    pub server_check: String,
    pub io_check: IoCheck,
    /// What was found: the mount at MOUNTPOINT, the server's answers (with the MOUNT-down
    /// warning), the IO check's outcome (`None`: not run, nothing of ours is mounted).
    pub mount: State,
    pub probe: Probe,
    pub io: Option<IoOutcome>,
    /// What the probe learnt that the record lacks or contradicts (a full v3 chain's root
    /// handle and ports): quickCheck and recover record it ([`record`]), `status` does not.
    pub learnt: Option<probe::Known>,
    /// The verdict: every failed check, in check order (none: healthy).
    pub problems: Vec<Problem>,
}

impl Health {
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problem `check` found, if it found one.
    pub fn problem(&self, check: Check) -> Option<&Problem> {
        self.problems.iter().find(|p| p.check == check)
    }

    /// The v3 MOUNT service did not answer while NFS did: not a failure. None when NFS did
    /// not answer either (a silent server is "server not answering", and "this one works"
    /// would be false).
    pub fn warning(&self) -> Option<String> {
        if !self.probe.ok() {
            return None;
        }
        self.probe.mount_warning.as_ref().map(|w| {
            format!(
                "the MOUNT service of {} does not answer ({w}): new mounts would fail; this one works",
                self.server
            )
        })
    }

    /// What is mounted at MOUNTPOINT, in a few words.
    pub fn mount_word(&self) -> &'static str {
        match &self.mount {
            State::NotMounted => "not mounted",
            State::Other(_) => "something else mounted",
            State::Ours { mismatches, .. } if mismatches.is_empty() => "mounted",
            State::Ours { .. } => "mounted, options differ",
        }
    }
}

impl Assessment for Health {
    /// quickCheck's answer: the one-line summary, or the failure with its exit code.
    fn outcome(&self) -> Outcome {
        if self.problems.is_empty() {
            let io = match self.io {
                Some(IoOutcome::Ok(d)) => {
                    format!(", {} done within {} us", self.io_check, d.as_micros())
                }
                _ => String::new(),
            };
            return Ok(format!(
                "{} on {} is healthy (server {} us{io})",
                self.source,
                self.mount_point,
                self.probe.total().as_micros()
            ));
        }
        let msgs: Vec<&str> = self.problems.iter().map(|p| p.message.as_str()).collect();
        let f = Failure::failed(msgs.join("; "));
        // nothing of ours is mounted: not active here (a Pacemaker probe's "not running")
        Err(if matches!(self.mount, State::NotMounted) {
            f.not_running()
        } else {
            f
        })
    }

    /// The verdict in a few words: "healthy", or each failed check's verdict.
    fn verdict(&self) -> Cow<'_, str> {
        if self.problems.is_empty() {
            return Cow::Borrowed("healthy");
        }
        let v: Vec<&str> = self.problems.iter().map(|p| p.verdict).collect();
        Cow::Owned(v.join("; "))
    }
}

/// The problem of a failed probe, its message starting with "server not answering" when
/// the server is silent or down.
fn probe_failure(s: &Settings, p: &Probe) -> Option<Problem> {
    let e = p.error.as_ref()?;
    Some(match e.kind {
        FailKind::Timeout | FailKind::Refused | FailKind::Unavailable => Problem::new(
            Check::Server,
            "server not answering",
            format!("server not answering: {} {e}", server_label(s)),
        ),
        FailKind::Mismatch => {
            let offered = &p.v4_offered;
            let mut better: Vec<u32> = offered.iter().copied().filter(|m| *m >= 1).collect();
            if better.is_empty() {
                better.clone_from(offered);
            }
            better.sort_unstable();
            let set = better
                .iter()
                .map(|m| format!("4.{m}"))
                .collect::<Vec<_>>()
                .join(" or ");
            let message = match offered.iter().min() {
                Some(low) => format!(
                    "server answers but not in NFS {}: this server offers only NFSv4.{low}{} ({}): set VERSION={set}",
                    s.cfg.version,
                    if *low < 2 { " and later" } else { "" },
                    probe::minors_text(offered)
                ),
                None => format!(
                    "server answers but refuses every NFSv4 minor version: {} {e}",
                    server_label(s)
                ),
            };
            Problem::new(Check::Server, "server answers in another version", message)
        }
        FailKind::Malformed => Problem::new(
            Check::Server,
            "server sent a malformed reply",
            format!(
                "server sent a malformed reply: {} {e}: check what answers on that address (a broken or hostile server)",
                server_label(s)
            ),
        ),
        FailKind::Denied | FailKind::Other => Problem::new(
            Check::Server,
            "server answers but refuses",
            format!(
                "server answers but refuses: {} {e}: check the export and the server's NFS services",
                server_label(s)
            ),
        ),
    })
}

/// The problem of a bad IO check outcome.
fn io_failure(s: &Settings, o: &IoOutcome) -> Option<Problem> {
    let (mp, budget) = (&s.cfg.mount_point, s.check_budget);
    let message = match o {
        IoOutcome::Ok(_) => return None,
        IoOutcome::Failed(nix::errno::Errno::ESTALE) => {
            return Some(Problem::new(
                Check::Io,
                "file handle stale",
                format!(
                    "the export's file handle is stale (the server changed the export): {} of {mp} failed with ESTALE: the export was re-created or moved to another file system (new fsid), or another server answers at {}; recover unmounts and mounts it afresh",
                    s.io_check, s.cfg.server
                ),
            ));
        }
        IoOutcome::Failed(e) => format!(
            "mount wedged: {} of {mp} failed with {} ({})",
            s.io_check,
            e,
            e.desc()
        ),
        IoOutcome::TimedOut => format!(
            "mount wedged: {} of {mp} did not return within {} ms; the check process was killed",
            s.io_check,
            budget.as_millis()
        ),
        IoOutcome::Stuck {
            pid,
            earlier: false,
        } => format!(
            "mount wedged: {} of {mp} did not return within {} ms; check process {pid} is stuck in the kernel and later checks will not start another",
            s.io_check,
            budget.as_millis()
        ),
        IoOutcome::Stuck { pid, earlier: true } => format!(
            "mount wedged: an earlier check process ({pid}) is still stuck in the kernel on {mp}; no new check was started"
        ),
    };
    Some(Problem::new(Check::Io, "mount wedged", message))
}

/// Probe the server and run the IO check child. The child is started first
/// and the probe runs meanwhile on this thread, leaving the child's reaping
/// grace at the end of the budget.
fn probe_and_io(
    s: &Settings,
    with_io: bool,
) -> (Probe, String, Option<IoOutcome>, Option<probe::Known>) {
    // a SERVER= name with no address known here: nothing of ours is mounted, and only
    // restore asks the resolver
    if !s.server_known {
        let why = format!(
            "not probed: SERVER={} has no address recorded on this node and nothing of ours is mounted (restore resolves the name)",
            s.server_name
        );
        return (Probe::default(), why, None, None);
    }
    let until = s.check_deadline;
    let io = with_io
        .then(|| nas::child::start_io_check(&s.cfg.mount_point, s.io_check, &s.marker(), until));
    let probe_until = if with_io && s.io_check != IoCheck::None {
        until.checked_sub(nas::child::REAP_GRACE).unwrap_or(until)
    } else {
        until
    };
    let (p, how, learnt) = server_probe(s, probe_until);
    let io = io.map(|started| {
        started
            .and_then(nas::child::IoCheckRun::finish)
            .unwrap_or_else(|e| {
                log::warn!("IO check of {} could not run: {e}", s.cfg.mount_point);
                IoOutcome::Failed(
                    e.raw_os_error()
                        .map(nix::errno::Errno::from_raw)
                        .unwrap_or(nix::errno::Errno::EIO),
                )
            })
    });
    (p, how, io, learnt)
}

/// How long the one full re-check may take when the recorded MOUNT port did not answer
/// while NFS did (rpc.mountd restarted on another port, or frozen): a frozen mountd must
/// not use up quickCheck's budget.
const MOUNT_RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// The v3 handle and ports a full probe learnt, when the record lacks or differs from them
/// (a restore that found the share mounted, a cleared run directory, a server whose ports
/// or handle changed): what [`record`] keeps.
fn to_record(s: &Settings, learnt: Option<&Learnt>, k: probe::Known) -> Option<probe::Known> {
    let recorded = learnt
        .filter(|l| l.version == s.cfg.version)
        .and_then(|l| l.known.as_ref());
    (recorded != Some(&k)).then_some(k)
}

/// Record what a look learnt ([`Health::learnt`]): quickCheck and recover do, after the
/// assessment (which changes nothing).
pub fn record(s: &Settings, h: &Health) {
    if let Some(k) = &h.learnt {
        record_known(s, k.clone());
    }
}

fn record_known(s: &Settings, k: probe::Known) {
    log::info!(
        "{}: recording the root handle, NFS port {} and MOUNT port {} for later checks",
        server_label(s),
        k.nfs_port,
        k.mount_port
    );
    // only a v3 probe learns a handle: the version is the configured one
    let l = Learnt {
        server: s.cfg.server,
        export: s.cfg.export.clone(),
        version: s.cfg.version,
        known: Some(k),
    };
    settings::save_learnt(&s.tag, &l);
}

/// The server check: for v3 with what restore learnt, NFS NULL + GETATTR on the known port
/// (and MOUNT NULL, a warning only); anything but a timeout there (stale handle, port
/// changed) runs the full chain once, and so does a MOUNT NULL that did not answer (mountd
/// on a new port), within [`MOUNT_RECHECK`] and keeping the warning when that fails too.
/// A successful full v3 chain is returned to be recorded when the record lacks or differs
/// from it. Returns the probe, which check it was, and what to record.
fn server_probe(s: &Settings, until: std::time::Instant) -> (Probe, String, Option<probe::Known>) {
    let learnt = settings::load_learnt(s);
    let full_v3 = "portmapper, MOUNT MNT, NFS NULL + GETATTR";
    if !s.cfg.version.is_v4()
        && let Some(l) = &learnt
        && let Some(k) = &l.known
    {
        let p = probe::probe_v3_known(s.cfg.server, s.cfg.version, k, until);
        let known = format!(
            "NFS NULL + GETATTR on port {} with the recorded handle, MOUNT NULL on port {}",
            k.nfs_port, k.mount_port
        );
        let recheck_until = match (&p.error, &p.mount_warning) {
            (None, None) => return (p, known, None),
            (None, Some(w)) => {
                log::info!(
                    "{}: MOUNT does not answer on port {} ({w}); asking the portmapper and MOUNT once in case it moved",
                    server_label(s),
                    k.mount_port
                );
                until.min(std::time::Instant::now() + MOUNT_RECHECK)
            }
            (Some(e), _) if e.kind == FailKind::Timeout => return (p, known, None),
            (Some(e), _) => {
                log::info!(
                    "{}: the check with the recorded handle and port failed ({e}); asking the portmapper and MOUNT again",
                    server_label(s)
                );
                until
            }
        };
        let full = probe::probe(s.cfg.server, &s.cfg.export, s.cfg.version, recheck_until);
        let learnt = probe::Known::from_probe(&full).and_then(|k| to_record(s, Some(l), k));
        if p.ok() && !full.ok() {
            // NFS works with what we know; MOUNT is down, not moved: the warning stands
            if let Some(e) = &full.error {
                log::debug!("the full chain failed too: {e}");
            }
            return (p, known, learnt);
        }
        return (full, format!("{known}, then {full_v3} again"), learnt);
    }
    // VERSION=4: ask in the minor version restore negotiated
    let version = learnt
        .as_ref()
        .map(|l| l.version)
        .filter(|v| s.cfg.version == nas::Version::V4 && v.is_v4())
        .unwrap_or(s.cfg.version);
    if version.is_v4() {
        return (
            probe::probe(s.cfg.server, &s.cfg.export, version, until),
            format!("NFS {version} NULL + COMPOUND"),
            None,
        );
    }
    let p = probe::probe(s.cfg.server, &s.cfg.export, version, until);
    let learnt = probe::Known::from_probe(&p).and_then(|k| to_record(s, learnt.as_ref(), k));
    (p, full_v3.to_string(), learnt)
}

fn not_mounted(s: &Settings, state: &State, negotiated: Option<Version>) -> Option<Problem> {
    let (mp, src) = (&s.cfg.mount_point, s.wanted());
    let (verdict, message) = match state {
        State::NotMounted => (
            "not mounted",
            format!("not mounted: {src} is not mounted on {mp} (recover mounts it again)"),
        ),
        State::Other(e) => (
            "not mounted",
            format!(
                "not mounted: {mp} holds {} ({}) instead of {src}",
                e.source, e.fstype
            ),
        ),
        State::Ours { mismatches, .. } if !mismatches.is_empty() => (
            "not mounted as configured",
            format!(
                "not mounted as configured: {src} on {mp}: {}",
                mismatches.join("; ")
            ),
        ),
        State::Ours { entry, .. } => {
            // VERSION=4: the mount must still be what restore negotiated
            let want = negotiated?;
            let got = entry.option("vers").flatten().unwrap_or("?");
            if nas::Version::from_mounted(got) == Some(want) {
                return None;
            }
            (
                "not mounted as negotiated",
                format!(
                    "not mounted as negotiated: {src} on {mp} is NFS {got}, restore negotiated NFS {want}"
                ),
            )
        }
    };
    Some(Problem::new(Check::Mount, verdict, message))
}

/// The verdict of one look from what it observed — pure, see the table in the tests: every
/// failed check, in check order: the mount ([`not_mounted`]), the server (the v4-only hint
/// when asking NFSv4 found one, else [`probe_failure`]), the IO check ([`io_failure`]).
pub fn judge(
    s: &Settings,
    mount: &State,
    negotiated: Option<Version>,
    probe: &Probe,
    v4_hint: Option<String>,
    io: Option<&IoOutcome>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    problems.extend(not_mounted(s, mount, negotiated));
    problems.extend(server_problem(s, probe, v4_hint));
    problems.extend(io.and_then(|o| io_failure(s, o)));
    problems
}

/// The one assessment of the resource, which quickCheck, recover and `status` share: the
/// mount in mountinfo, the server probe and — on a mount of ours only (something else
/// could be a dead mount) — the IO check child, judged by [`judge`]. It changes nothing
/// (what the probe learnt is [`Health::learnt`], for [`record`]). A failure is returned only
/// when mountinfo cannot be read.
pub fn assess(s: &Settings) -> Result<Health, Failure> {
    let state = ops::state(&s.cfg, &mounts()?);
    let negotiated = settings::load_learnt(s)
        .map(|l| l.version)
        .filter(|_| s.cfg.version == nas::Version::V4);
    let mounted_ours = matches!(state, State::Ours { .. });
    let (p, server_check, io, learnt) = probe_and_io(s, mounted_ours);
    let v4_hint = v4_only_hint(s, &p);
    let problems = judge(s, &state, negotiated, &p, v4_hint, io.as_ref());
    let h = Health {
        source: s.wanted(),
        mount_point: s.cfg.mount_point.clone(),
        version: s.cfg.version,
        negotiated,
        server: server_label(s),
        server_check,
        io_check: s.io_check,
        mount: state,
        probe: p,
        io,
        learnt,
        problems,
    };
    if let Some(w) = h.warning() {
        log::warn!("{w}");
    }
    if h.healthy() {
        log::debug!(
            "probe steps: {}",
            h.probe
                .steps
                .iter()
                .map(|st| format!("{} {} us", st.name, st.rtt.as_micros()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(h)
}

/// The mount point as restore needs it: a directory, made (without following a link, like
/// every walk of MOUNTPOINT) when missing.
fn ensure_mount_point(s: &Settings) -> Result<(), Failure> {
    let mp = &s.cfg.mount_point;
    match ops::mount_point(mp, true).map_err(lib_failure)? {
        ops::MountPoint::Dir { .. } => Ok(()),
        ops::MountPoint::Other => Err(Failure::usage(format!(
            "MOUNTPOINT {mp} exists but is not a directory: remove it or choose another MOUNTPOINT"
        ))),
        ops::MountPoint::Missing => Err(Failure::failed(format!(
            "cannot create mount point {mp}: it is still missing after creating it"
        ))),
    }
}

/// A library error as the hook's failure: configuration errors exit 2.
fn lib_failure(e: nas::Error) -> Failure {
    match e.kind {
        nas::ErrorKind::Config => Failure::usage(e.msg),
        _ => Failure::failed(e.msg),
    }
}

/// How long asking NFSv4 may take when a v2/v3 probe was refused at the portmapper: the
/// server is up (it refused), so its answer comes at once or not at all.
const V4_HINT_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

/// The probe's problem, with the v4-only hint in place of "server not answering" when the
/// server refuses v2/v3 but answers NFSv4 (asked again here, for restore's probe).
fn server_failure(s: &Settings, p: &Probe) -> Option<Problem> {
    server_problem(s, p, v4_only_hint(s, p))
}

/// The server check's problem: the v4-only hint when there is one, else the probe's.
fn server_problem(s: &Settings, p: &Probe, v4_hint: Option<String>) -> Option<Problem> {
    match v4_hint {
        Some(hint) => Some(Problem::new(
            Check::Server,
            "server offers only NFSv4",
            hint,
        )),
        None => probe_failure(s, p),
    }
}

/// For VERSION=2/3 refused by the portmapper or MOUNT: does the server speak NFSv4?
/// Then say so (the hook would otherwise only say "not answering"). Asked only when the
/// portmapper refused (not when it was silent), within [`V4_HINT_BUDGET`], and used only
/// when the NFSv4 NULL and a COMPOUND answered.
fn v4_only_hint(s: &Settings, p: &Probe) -> Option<String> {
    let e = p.error.as_ref()?;
    // a portmapper that refuses, or knows no MOUNT/NFS v3: perhaps no v3 at all
    let by_pmap = e.step.starts_with("portmapper");
    if s.cfg.version.is_v4() || !by_pmap || e.kind == FailKind::Timeout {
        return None;
    }
    let until = s
        .check_deadline
        .min(std::time::Instant::now() + V4_HINT_BUDGET);
    let v4 = probe::probe_v4(s.cfg.server, nas::Version::V4, true, until);
    if !v4.steps.iter().any(|st| st.name == "nfs4 NULL") {
        return None;
    }
    if v4.v4_offered.is_empty() {
        return None;
    }
    let mut set: Vec<String> = v4
        .v4_offered
        .iter()
        .filter(|m| **m >= 1)
        .map(|m| format!("4.{m}"))
        .collect();
    if set.is_empty() {
        set.push("4.0".into());
    }
    set.sort();
    Some(format!(
        "server offers only NFSv4: {} does not offer NFS v{} ({e}) but answers NFSv4 ({}): set VERSION={}",
        s.cfg.server,
        s.cfg.version,
        probe::minors_text(&v4.v4_offered),
        set.join(" or ")
    ))
}

/// Mount as configured. `seen` is a probe the caller has just seen succeed (recover
/// probes before deciding anything); without one the server is probed first. What the
/// probe and the mount learnt (negotiated version, v3 handle and ports) is recorded.
fn mount_now(s: &Settings, seen: Option<&Probe>) -> Outcome {
    ensure_mount_point(s)?;
    let fresh;
    let p = match seen {
        Some(p) => p,
        None => {
            fresh = probe::probe(s.cfg.server, &s.cfg.export, s.cfg.version, s.check_deadline);
            if let Some(p) = server_failure(s, &fresh) {
                return Err(Failure::failed(format!(
                    "{}; nothing was mounted",
                    p.message
                )));
            }
            &fresh
        }
    };
    let req = ops::mount(&s.cfg, p.v4_minor(), s.deadline).map_err(lib_failure)?;
    let known =
        probe::Known::from_probe(p).or_else(|| settings::load_learnt(s).and_then(|l| l.known));
    settings::save_learnt(
        &s.tag,
        &Learnt {
            server: s.cfg.server,
            export: s.cfg.export.clone(),
            version: req.version,
            known: known.filter(|_| !s.cfg.version.is_v4()),
        },
    );
    let negotiated = if s.cfg.version == nas::Version::V4 {
        ", negotiated from VERSION=4".to_string()
    } else {
        String::new()
    };
    Ok(format!(
        "mounted {} on {} (NFS {}{negotiated}; {} {})",
        req.source, req.target, req.version, req.fstype, req.data
    ))
}

fn restore(s: &Settings) -> Outcome {
    match ops::state(&s.cfg, &mounts()?) {
        State::Ours { mismatches, .. } => {
            if !mismatches.is_empty() {
                log::warn!(
                    "{} is already mounted on {} but differs from the configuration: {}",
                    s.cfg.source(),
                    s.cfg.mount_point,
                    mismatches.join("; ")
                );
            }
            Ok(format!(
                "{} is already mounted on {}",
                s.cfg.source(),
                s.cfg.mount_point
            ))
        }
        State::Other(e) => Err(Failure::usage(format!(
            "{} is already in use: {} ({}) is mounted there; unmount it or choose another MOUNTPOINT",
            s.cfg.mount_point, e.source, e.fstype
        ))),
        State::NotMounted => mount_now(s, None),
    }
}

fn describe_unmount(r: &ops::UnmountReport) -> String {
    let mut parts = Vec::new();
    if !r.signalled.is_empty() {
        let who: Vec<String> = r
            .signalled
            .iter()
            .map(|u| format!("{} ({})", u.pid, u.comm))
            .collect();
        parts.push(format!("ended {}", who.join(", ")));
    }
    let verb = |m: &Method| match m {
        Method::Normal => "unmounted",
        Method::Forced => "force-unmounted",
        Method::Lazy => "lazily detached",
    };
    for (mp, m) in &r.removed {
        parts.push(format!("{} {mp}", verb(m)));
    }
    for (mp, ns, m) in &r.copies {
        parts.push(format!("{} its copy {mp} in mount namespace {ns}", verb(m)));
    }
    if !r.survivors.is_empty() {
        parts.push(format!(
            "processes {:?} could not be ended (stuck in the kernel)",
            r.survivors
        ));
    }
    parts.join("; ")
}

/// Leave a working directory inherited from the caller: on the share it would make this hook
/// one of the holders it must never end.
fn leave_cwd() {
    if let Err(e) = std::env::set_current_dir("/") {
        log::debug!("cannot change to /: {e}");
    }
}

fn remove(s: &Settings) -> Outcome {
    leave_cwd();
    let mp = &s.cfg.mount_point;
    match ops::state(&s.cfg, &mounts()?) {
        State::NotMounted => {
            clear_marker(s);
            return Ok(format!("{mp} is not mounted; nothing to do"));
        }
        State::Other(e) => {
            // without an address (SERVER= a name never resolved here) no mount is ours
            let ours = s.wanted();
            log::warn!(
                "{mp} holds {} ({}), not {ours}; leaving it alone",
                e.source,
                e.fstype
            );
            return Ok(format!("{ours} is not mounted on {mp}"));
        }
        State::Ours { .. } => {}
    }
    let r = ops::unmount(mp, s.deadline).map_err(|e| Failure::failed(e.msg))?;
    clear_marker(s);
    Ok(describe_unmount(&r))
}

/// Forget a stuck IO-check child once the mount is gone (its process, if
/// still alive, is no longer a sign of anything we manage).
fn clear_marker(s: &Settings) {
    let _ = std::fs::remove_file(s.marker());
}

fn halt_or(s: &Settings, f: Failure) -> Outcome {
    if s.halt_on_failure {
        log::error!("{f}");
        log::error!(
            "ON_FAILURE=halt: powering this node off now so LifeKeeper fails over (no sync: it could hang on the dead mount)"
        );
        let Err(e) = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
        return Err(Failure::failed(format!(
            "{f}; ON_FAILURE=halt could not power off this node: {e}"
        )));
    }
    Err(f)
}

/// What recover does about what [`assess`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// Healthy: nothing to do.
    Nothing,
    /// The server is silent or refuses (quickCheck's message): nothing here can fix that;
    /// LifeKeeper should fail over.
    FailOver(String),
    /// MOUNTPOINT holds a mount that is not ours (its source and type): recover does not
    /// touch it.
    Foreign { source: String, fstype: String },
    /// Take our mount off (`unmount`: there is one) and mount again.
    Remount { unmount: bool },
}

/// What recover does about `h` (pure): every failed check named, so a new check cannot
/// silently get a remount. A server problem wins (nothing local helps); a mount or IO
/// problem remounts, unless what is mounted is not ours.
pub fn repair(h: &Health) -> Repair {
    let mut server = None;
    let mut remount = false;
    for p in &h.problems {
        match p.check {
            Check::Server => server = server.or(Some(p)),
            Check::Mount | Check::Io => remount = true,
        }
    }
    if let Some(p) = server {
        return Repair::FailOver(p.message.clone());
    }
    if !remount {
        return Repair::Nothing;
    }
    match &h.mount {
        State::Other(e) => Repair::Foreign {
            source: e.source.clone(),
            fstype: e.fstype.clone(),
        },
        State::Ours { .. } => Repair::Remount { unmount: true },
        State::NotMounted => Repair::Remount { unmount: false },
    }
}

/// Repair what [`assess`] found, as [`repair`] decides: nothing when healthy; a silent or
/// refusing server cannot be repaired here (fail over); otherwise take our mount off (if any)
/// and mount again.
fn recover(s: &Settings) -> Outcome {
    leave_cwd();
    let h = assess(s)?;
    record(s, &h);
    let unmount = match repair(&h) {
        Repair::Nothing => {
            return Ok(format!(
                "{} on {} is healthy; nothing to recover",
                h.source, h.mount_point
            ));
        }
        Repair::FailOver(message) => {
            return halt_or(
                s,
                Failure::failed(format!(
                    "{message}; cannot recover locally, LifeKeeper should fail over"
                )),
            );
        }
        Repair::Foreign { source, fstype } => {
            return Err(Failure::failed(format!(
                "{} holds {source} ({fstype}) instead of {}: unmount it by hand; recover does not touch mounts it does not own",
                s.cfg.mount_point,
                s.cfg.source()
            )));
        }
        Repair::Remount { unmount } => unmount,
    };
    let mut done = Vec::new();
    if let Some(p) = h.problem(Check::Io) {
        log::warn!("{}", p.message);
    }
    if unmount {
        let r = ops::unmount(&s.cfg.mount_point, s.deadline)
            .map_err(|e| Failure::failed(e.msg))
            .or_else(|f| halt_or(s, f).map(|_| ops::UnmountReport::default()))?;
        clear_marker(s);
        let what = describe_unmount(&r);
        if !what.is_empty() {
            done.push(what);
        }
    }
    // the server answered the probe above: no second probe before mounting
    match mount_now(s, Some(&h.probe)) {
        Ok(m) => {
            done.push(m);
            Ok(done.join("; "))
        }
        Err(f) => halt_or(s, f),
    }
}

#[cfg(test)]
mod tests;
