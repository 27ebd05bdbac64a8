//! `doctor`: one node-wide report — every lkhelpers resource configured here with what its
//! kit's `status` says, the platform and the Hyper-V host, LifeKeeper's wiring findings and
//! lkh-scsipr's defender — as a table for the 3 a.m. reader or one JSON object for
//! monitoring. Exit 0 only when everything is healthy.

use std::path::PathBuf;
use std::time::Duration;

use lkh_common::{Exit, Failure, Json};
use lkh_platform::doctor::{self, Checked, Places, State};
use lkh_platform::lifekeeper::{self, Check, Recorded};
use lkh_platform::wiring::{self, Level};
use lkh_platform::{DetectOptions, Detection};

use crate::host_out;

pub struct Ask {
    pub defaults: PathBuf,
    pub lkroot: PathBuf,
    pub network: bool,
    pub timeout: Duration,
    pub standby: bool,
    pub json: bool,
}

/// The defender, as far as the scsipr resources' answers tell.
enum DefenderState {
    /// No lkh-scsipr resource here.
    NotNeeded,
    /// No answer carried a defender report.
    Unknown,
    Known(doctor::Defender),
}

fn defender_of(checked: &[Checked]) -> DefenderState {
    let scsipr: Vec<&Checked> = checked
        .iter()
        .filter(|c| c.resource.kit.as_deref() == Some("scsipr"))
        .collect();
    if scsipr.is_empty() {
        return DefenderState::NotNeeded;
    }
    match scsipr.iter().find_map(|c| c.defender.clone()) {
        Some(d) => DefenderState::Known(d),
        None => DefenderState::Unknown,
    }
}

fn defender_text(d: &DefenderState) -> String {
    match d {
        DefenderState::NotNeeded => "not needed (no lkh-scsipr resource here)".into(),
        DefenderState::Unknown => "unknown (lkh-scsipr too old to report it)".into(),
        DefenderState::Known(d) => {
            let mut s = if d.running { "running" } else { "NOT RUNNING" }.to_string();
            if let Some(p) = d.pid {
                s += &format!(", pid {p}");
            }
            if let Some(a) = d.last_tick_age_s {
                s += &format!(", last cycle {a:.1} s ago");
            }
            if !d.note.is_empty() {
                s += &format!(": {}", d.note);
            }
            s
        }
    }
}

/// Whether a resource's state makes the node unhealthy.
fn bad(c: &Checked, standby: bool) -> bool {
    match c.state {
        State::Healthy | State::NotChecked => false,
        State::Failed | State::Elsewhere => !standby,
        State::Misconfigured | State::NoAnswer => true,
    }
}

fn state_word(c: &Checked, standby: bool) -> String {
    match c.state {
        State::Failed | State::Elsewhere if standby => "not here".to_string(),
        s if bad(c, standby) => s.as_str().to_ascii_uppercase(),
        s => s.as_str().to_string(),
    }
}

struct Report {
    detection: Detection,
    lk: Result<(Recorded, Check, wiring::Report), String>,
    checked: Vec<Checked>,
    defender: DefenderState,
    notes: Vec<String>,
    problems: Vec<String>,
}

fn gather(a: &Ask) -> Report {
    let detection = lkh_platform::detect(&DetectOptions {
        network: a.network,
        ..DetectOptions::default()
    });
    let lk = lifekeeper::read_recorded(&a.defaults, &a.lkroot)
        .map(|rec| {
            let c = lifekeeper::check(&rec, &detection.verdict);
            let w = wiring::check(&crate::wiring_options(&rec));
            (rec, c, w)
        })
        .map_err(|e| e.0);
    let sources = lkh_common::Sources::from_env();
    let places = Places {
        conf_dir: sources.conf_dir.clone(),
        run_dir: lkh_common::config::run_dir(),
        lkroot: lk.as_ref().ok().map(|(rec, _, _)| rec.lkroot.clone()),
    };
    let (resources, notes) = doctor::discover(&places);
    let checked = match doctor::bin_dir() {
        Some(dir) => doctor::check_all(resources, &dir, a.timeout),
        None => Vec::new(),
    };
    let defender = defender_of(&checked);

    let mut problems = Vec::new();
    for c in checked.iter().filter(|c| bad(c, a.standby)) {
        problems.push(format!(
            "{} (lkh-{}): {}: {}",
            c.resource.tag,
            c.resource.kit.as_deref().unwrap_or("?"),
            c.state.as_str(),
            c.message
        ));
    }
    if let DefenderState::Known(d) = &defender {
        let held = checked
            .iter()
            .any(|c| c.resource.kit.as_deref() == Some("scsipr") && c.state == State::Healthy);
        if !d.running && held {
            problems.push(format!(
                "lkh-scsipr's defender is not running while this node holds a reservation: systemctl enable --now lkh-scsipr-watch{}",
                if d.note.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", d.note)
                }
            ));
        }
    }
    if let Ok((_, c, w)) = &lk {
        if !c.consistent() {
            problems.push(
                "LifeKeeper's recorded platform does not match this node (see `lkh-platform check-lifekeeper`)"
                    .into(),
            );
        }
        let errors = w
            .findings
            .iter()
            .filter(|f| f.level == Level::Error)
            .count();
        if errors > 0 {
            problems.push(format!(
                "{errors} gen/app wiring error{} (see the wiring lines)",
                if errors == 1 { "" } else { "s" }
            ));
        }
    }
    Report {
        detection,
        lk,
        checked,
        defender,
        notes,
        problems,
    }
}

/// Pads every column but the last to its widest cell.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line += c;
            } else {
                line += &format!("{c:<w$}  ", w = width[i]);
            }
        }
        s += line.trim_end();
        s += "\n";
    }
    s
}

fn text(r: &Report, a: &Ask) -> String {
    let d = &r.detection;
    let v = &d.verdict;
    let clean = lkh_common::logging::clean;
    let mut s = format!(
        "node: {}{}\n",
        d.evidence.local.node_name.as_deref().unwrap_or("(unknown)"),
        if a.standby {
            " (checked as a standby)"
        } else {
            ""
        }
    );
    s += &format!(
        "platform: {} ({}, {})\n",
        v.platform.as_str(),
        v.platform.describe(),
        v.confidence.as_str()
    );
    s += &host_out::host_text(d);
    s += "resources:\n";
    if r.checked.is_empty() {
        s += "  none configured on this node\n";
    } else {
        let mut rows = vec![vec![
            "  KIT".to_string(),
            "TAG".into(),
            "STATE".into(),
            "EXIT".into(),
            "VERDICT".into(),
            "MESSAGE".into(),
        ]];
        for c in &r.checked {
            rows.push(vec![
                format!(
                    "  {}",
                    c.resource
                        .kit
                        .as_deref()
                        .map_or_else(|| "?".to_string(), |k| format!("lkh-{k}"))
                ),
                c.resource.tag.clone(),
                state_word(c, a.standby),
                c.exit.map_or_else(|| "-".into(), |e| e.to_string()),
                if c.verdict.is_empty() {
                    "-".into()
                } else {
                    clean(&c.verdict)
                },
                clean(&c.message),
            ]);
        }
        s += &table(&rows);
    }
    for n in &r.notes {
        s += &format!("  note: {}\n", clean(n));
    }
    s += &format!(
        "defender (lkh-scsipr watch): {}\n",
        defender_text(&r.defender)
    );
    match &r.lk {
        Err(why) => s += &format!("lifekeeper: not checked ({why})\n"),
        Ok((_, c, w)) => {
            s += &format!(
                "lifekeeper: platform record {}; {} gen/app resource{} using lkhelpers\n",
                if c.consistent() {
                    "matches this node"
                } else if c.undetermined {
                    "cannot be judged"
                } else {
                    "DOES NOT MATCH this node"
                },
                w.tags,
                if w.tags == 1 { "" } else { "s" }
            );
            for f in w.findings.iter().filter(|f| f.level >= Level::Warning) {
                s += &format!("  {}: {}\n", f.level.as_str(), clean(&f.message()));
            }
        }
    }
    if r.problems.is_empty() {
        s += "result: healthy\n";
    } else {
        s += &format!(
            "result: NOT HEALTHY ({} problem{})\n",
            r.problems.len(),
            if r.problems.len() == 1 { "" } else { "s" }
        );
        for p in &r.problems {
            s += &format!("  - {}\n", clean(p));
        }
    }
    s
}

fn json(r: &Report, a: &Ask) -> Json {
    let d = &r.detection;
    let mut platform = Json::obj()
        .with("platform", d.verdict.platform.as_str())
        .with("confidence", d.verdict.confidence.as_str());
    host_out::push_host_json(&mut platform, d);
    let resources: Vec<Json> = r
        .checked
        .iter()
        .map(|c| {
            Json::obj()
                .with("kit", c.resource.kit.clone())
                .with("tag", c.resource.tag.as_str())
                .with("found_in", c.resource.found_in())
                .with("state", c.state.as_str())
                .with(
                    "healthy",
                    !bad(c, a.standby) && c.state != State::NotChecked,
                )
                .with("problem", bad(c, a.standby))
                .with("exit", c.exit)
                .with("verdict", c.verdict.as_str())
                .with("message", c.message.as_str())
                .with("took_ms", c.took.map(|t| t.as_millis() as u64))
        })
        .collect();
    let defender = match &r.defender {
        DefenderState::NotNeeded => Json::obj().with("state", "not needed"),
        DefenderState::Unknown => Json::obj()
            .with("state", "unknown")
            .with("note", "lkh-scsipr too old to report it"),
        DefenderState::Known(x) => Json::obj()
            .with("state", if x.running { "running" } else { "not running" })
            .with("running", x.running)
            .with("pid", x.pid)
            .with("last_tick_age_s", x.last_tick_age_s)
            .with("note", x.note.as_str()),
    };
    let lk = match &r.lk {
        Err(why) => Json::obj().with("checked", false).with("why", why.as_str()),
        Ok((_, c, w)) => Json::obj()
            .with("checked", true)
            .with("platform_consistent", c.consistent())
            .with("genapp_resources", w.tags)
            .with(
                "findings",
                Json::Arr(
                    w.findings
                        .iter()
                        .map(|f| {
                            Json::obj()
                                .with("level", f.level.as_str())
                                .with("tag", f.tag.clone())
                                .with("message", f.message())
                        })
                        .collect(),
                ),
            ),
    };
    Json::obj()
        .with("node", d.evidence.local.node_name.clone())
        .with("healthy", r.problems.is_empty())
        .with("exit", if r.problems.is_empty() { 0u32 } else { 1 })
        .with("standby", a.standby)
        .with("platform", platform)
        .with("resources", Json::Arr(resources))
        .with("defender", defender)
        .with("lifekeeper", lk)
        .with("notes", r.notes.clone())
        .with("problems", r.problems.clone())
}

pub fn doctor(a: &Ask) -> Result<Exit, Failure> {
    if doctor::bin_dir().is_none() {
        return Err(Failure::failed(
            "cannot find where lkh-platform is installed, so the kits beside it cannot be found",
        ));
    }
    let r = gather(a);
    if a.json {
        println!("{}", json(&r, a));
    } else {
        print!("{}", text(&r, a));
    }
    if r.problems.is_empty() {
        Ok(Exit::Ok)
    } else {
        log::warn!(
            "{} problem{} on this node (see \"result\")",
            r.problems.len(),
            if r.problems.len() == 1 { "" } else { "s" }
        );
        Ok(Exit::Failed)
    }
}
