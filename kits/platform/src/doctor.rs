//! `doctor`'s mechanism: which lkhelpers resources this node has, and what each kit's
//! `status -t TAG --json` says about them.
//!
//! Resources are found in three places: the configuration files `<conf dir>/<TAG>.conf`
//! (LifeKeeper resources; the directory opened with lkh-common's `trusted` rules), gen/app's
//! copies of the kits' wrappers under `$LKROOT` (whose marker line names the kit), and the
//! kits' run state `<run dir>/<kit>/<TAG>/` (every hook that ran here since boot, LifeKeeper's
//! or Pacemaker's, left its tag's directory). A tag whose kit none of them names is listed as
//! such. Each resource whose kit and configuration file are known is asked with the kit's own
//! `status -t TAG --json` (its one assessment, `exit`, `verdict`, `message`), run bounded by
//! [`crate::runner`]; a resource known only from run state is a Pacemaker (OCF) resource whose
//! parameters live in Pacemaker's configuration, so it is listed, not asked.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lkh_common::runstate::RunDir;
use lkh_common::trusted::Dir;
use lkh_common::{Action, Tag};

use crate::json_in::{self, Value};
use crate::runner::{self, Ran};

/// The resource kits.
pub const KITS: &[&str] = &["scsipr", "nas", "ip"];

/// One resource this node knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// `None` when nothing names the kit.
    pub kit: Option<String>,
    pub tag: String,
    /// `<conf dir>/<TAG>.conf` exists.
    pub conf: bool,
    /// gen/app has a copy of a wrapper for the tag.
    pub genapp: bool,
    /// The kit's run state has the tag's directory.
    pub run_state: bool,
}

impl Resource {
    /// Where it was found, for the report: `conf, gen/app, run state`.
    pub fn found_in(&self) -> Vec<&'static str> {
        [
            (self.conf, "conf"),
            (self.genapp, "gen/app"),
            (self.run_state, "run state"),
        ]
        .into_iter()
        .filter_map(|(b, w)| b.then_some(w))
        .collect()
    }
}

/// Where to look.
#[derive(Debug, Clone)]
pub struct Places {
    pub conf_dir: PathBuf,
    pub run_dir: PathBuf,
    /// `None` when LifeKeeper is not installed.
    pub lkroot: Option<PathBuf>,
}

/// The kit gen/app's copy at `path` belongs to, when it is one of our wrappers.
fn genapp_kit(path: &Path) -> Option<String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut buf = Vec::new();
    f.take(lkh_common::genapp::MAX_WRAPPER_LEN as u64)
        .read_to_end(&mut buf)
        .ok()?;
    // the kit is what the wrapper runs (its exec line), not what its comment says
    let exec = lkh_common::genapp::parse_script(std::str::from_utf8(&buf).ok()?).ok()?;
    let kit = exec
        .binary
        .file_name()?
        .to_str()?
        .strip_prefix("lkh-")?
        .to_owned();
    KITS.contains(&kit.as_str()).then_some(kit)
}

/// Every resource found, sorted by tag and kit, and notes on what could not be looked at.
pub fn discover(p: &Places) -> (Vec<Resource>, Vec<String>) {
    let mut notes = Vec::new();
    let mut confs: Vec<String> = Vec::new();
    match Dir::open(&p.conf_dir, None) {
        Ok(Some(dir)) => match dir.entries() {
            Ok(names) => {
                confs = names
                    .iter()
                    .filter_map(|n| n.to_str()?.strip_suffix(".conf").map(str::to_string))
                    .filter(|t| Tag::parse(t).is_ok())
                    .collect()
            }
            Err(f) => notes.push(f.message),
        },
        Ok(None) => {}
        Err(f) => notes.push(format!("configuration files not looked at: {}", f.message)),
    }
    let mut genapp: BTreeMap<String, String> = BTreeMap::new();
    if let Some(lkroot) = &p.lkroot {
        let dir = lkh_common::genapp::copy_dir(lkroot, Action::Restore);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.filter_map(Result::ok) {
                let name = e.file_name();
                if let (Some(tag), Some(kit)) = (name.to_str(), genapp_kit(&e.path())) {
                    genapp.insert(tag.to_string(), kit);
                }
            }
        }
    }
    let mut ran: Vec<(String, String)> = Vec::new();
    for kit in KITS {
        match RunDir::at(&p.run_dir, kit).tags() {
            Ok(tags) => ran.extend(tags.into_iter().map(|t| (t.to_string(), kit.to_string()))),
            Err(f) => notes.push(format!(
                "run state of lkh-{kit} not looked at: {}",
                f.message
            )),
        }
    }

    let mut out: Vec<Resource> = Vec::new();
    let mut add = |kit: Option<String>, tag: &str, conf, ga, rs| {
        if let Some(r) = out.iter_mut().find(|r| r.tag == tag && r.kit == kit) {
            r.conf |= conf;
            r.genapp |= ga;
            r.run_state |= rs;
        } else {
            out.push(Resource {
                kit,
                tag: tag.to_string(),
                conf,
                genapp: ga,
                run_state: rs,
            });
        }
    };
    for (tag, kit) in &genapp {
        add(Some(kit.clone()), tag, confs.contains(tag), true, false);
    }
    for (tag, kit) in &ran {
        add(Some(kit.clone()), tag, confs.contains(tag), false, true);
    }
    for tag in &confs {
        let named = genapp.contains_key(tag) || ran.iter().any(|(t, _)| t == tag);
        if !named {
            add(None, tag, true, false, false);
        }
    }
    out.sort_by(|a, b| (&a.tag, &a.kit).cmp(&(&b.tag, &b.kit)));
    (out, notes)
}

/// lkh-scsipr's fencing loop as its `status --json` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Defender {
    pub running: bool,
    pub pid: Option<i64>,
    pub last_tick_age_s: Option<f64>,
    pub note: String,
}

/// What `status -t TAG --json` said.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub exit: i64,
    pub verdict: String,
    pub message: String,
    /// `Some` when the output has a `defender` object (lkh-scsipr with a defender report).
    pub defender: Option<Defender>,
}

/// Reads a kit's `status --json` output.
pub fn parse_status(text: &str) -> Result<Answer, String> {
    let v = json_in::parse(text.trim())?;
    let exit = v
        .get("exit")
        .and_then(Value::as_i64)
        .ok_or("no \"exit\" in the output")?;
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let defender = v
        .get("defender")
        .filter(|d| !d.is_null())
        .map(|d| Defender {
            running: d.get("running").and_then(Value::as_bool).unwrap_or(false),
            pid: d.get("pid").and_then(Value::as_i64),
            last_tick_age_s: d.get("last_tick_age_s").and_then(Value::as_f64),
            note: d
                .get("note")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        });
    Ok(Answer {
        exit,
        verdict: s("verdict"),
        message: s("message"),
        defender,
    })
}

/// A resource's state on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// `status` exit 0.
    Healthy,
    /// exit 1: not healthy here (failing, or not in service on this node).
    Failed,
    /// exit 2: the configuration is wrong or names something missing here.
    Misconfigured,
    /// exit 3: another node holds the resource.
    Elsewhere,
    /// No usable answer within the time allowed.
    NoAnswer,
    /// Not asked: the kit or the configuration file is unknown, or the kit is not installed.
    NotChecked,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Healthy => "healthy",
            State::Failed => "failed",
            State::Misconfigured => "misconfigured",
            State::Elsewhere => "held elsewhere",
            State::NoAnswer => "no answer",
            State::NotChecked => "not checked",
        }
    }

    fn from_exit(code: i64) -> State {
        match code {
            0 => State::Healthy,
            2 => State::Misconfigured,
            3 => State::Elsewhere,
            _ => State::Failed,
        }
    }
}

/// One resource's result.
#[derive(Debug, Clone)]
pub struct Checked {
    pub resource: Resource,
    pub state: State,
    /// The kit's exit code (`status`'s JSON, else the process's).
    pub exit: Option<i64>,
    pub verdict: String,
    /// The kit's one-line message, or why it was not asked or gave no answer.
    pub message: String,
    pub defender: Option<Defender>,
    pub took: Option<Duration>,
}

/// Judges a finished `status` run.
pub fn judge_run(resource: Resource, ran: &Ran, budget: Duration) -> Checked {
    let base = |state, exit, verdict: &str, message: String| Checked {
        resource: resource.clone(),
        state,
        exit,
        verdict: verdict.to_string(),
        message,
        defender: None,
        took: Some(ran.took),
    };
    let Some(status) = ran.status else {
        return base(State::NoAnswer, None, "", ran.failure(budget));
    };
    let code = status.code().map(i64::from);
    match parse_status(&ran.stdout) {
        Ok(a) => Checked {
            state: State::from_exit(a.exit),
            exit: Some(a.exit),
            verdict: a.verdict,
            message: a.message,
            defender: a.defender,
            ..base(State::Healthy, None, "", String::new())
        },
        // a refusal before any JSON (a bad configuration exits 2 with its message on stderr)
        Err(_) if code == Some(2) => base(State::Misconfigured, code, "", ran.reason().to_string()),
        Err(e) => base(
            State::NoAnswer,
            code,
            "",
            format!(
                "{}; its output is not status JSON ({e})",
                ran.failure(budget)
            ),
        ),
    }
}

/// Asks every resource's kit, all at once, each run killed after `budget`. Kits are the
/// `lkh-<kit>` binaries in `bin_dir`.
pub fn check_all(resources: Vec<Resource>, bin_dir: &Path, budget: Duration) -> Vec<Checked> {
    let not_checked = |r: Resource, why: String| Checked {
        resource: r,
        state: State::NotChecked,
        exit: None,
        verdict: String::new(),
        message: why,
        defender: None,
        took: None,
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = resources
            .into_iter()
            .map(|r| {
                s.spawn(move || {
                    let Some(kit) = r.kit.clone() else {
                        return not_checked(
                            r,
                            "no gen/app resource or run state names its kit".into(),
                        );
                    };
                    if !r.conf {
                        return not_checked(
                            r,
                            "no configuration file: a Pacemaker resource, whose parameters are in Pacemaker's configuration (crm_mon shows its state)".into(),
                        );
                    }
                    let bin = bin_dir.join(format!("lkh-{kit}"));
                    if let Err(why) = runner::trusted_program(&bin) {
                        return not_checked(r, format!("lkh-{kit} is not run: {why}"));
                    }
                    let tag = r.tag.clone();
                    match runner::run(
                        &bin,
                        &["status", "-t", &tag, "--json"],
                        &[],
                        budget,
                    ) {
                        Ok(ran) => judge_run(r, &ran, budget),
                        Err(e) => not_checked(r, format!("{}: cannot run: {e}", bin.display())),
                    }
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    })
}

/// The directory of the running binary: where the kits are installed beside it.
pub fn bin_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()?
        .parent()
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_json_with_and_without_a_defender() {
        let a = parse_status(
            r#"{"tag":"disk","healthy":true,"verdict":"ours","exit":0,"message":"disk held"}"#,
        )
        .unwrap();
        assert_eq!((a.exit, a.verdict.as_str(), a.defender), (0, "ours", None));
        let a = parse_status(
            r#"{"exit":0,"verdict":"ours","message":"m","defender":{"running":true,"pid":812,"last_tick_age_s":1.5,"note":"ok"}}"#,
        )
        .unwrap();
        assert_eq!(
            a.defender,
            Some(Defender {
                running: true,
                pid: Some(812),
                last_tick_age_s: Some(1.5),
                note: "ok".into()
            })
        );
        let a = parse_status(r#"{"exit":1,"defender":{"running":false,"pid":null,"last_tick_age_s":null,"note":"not started"}}"#).unwrap();
        assert!(!a.defender.unwrap().running);
        assert!(parse_status(r#"{"verdict":"x"}"#).is_err());
        assert!(parse_status("").is_err());
    }

    #[test]
    fn exit_codes_are_states() {
        assert_eq!(State::from_exit(0), State::Healthy);
        assert_eq!(State::from_exit(1), State::Failed);
        assert_eq!(State::from_exit(2), State::Misconfigured);
        assert_eq!(State::from_exit(3), State::Elsewhere);
        assert_eq!(State::from_exit(9), State::Failed);
    }
}
