//! Diagnostics: `status -t TAG [--json]` and `probe SERVER [EXPORT]`.
//! Neither changes anything; both are bounded by their timeout.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use lkh_common::{Action, Assessment, Failure, Json, KitSpec, Outcome};
use nas::ops::State;
use nas::probe::{self, Probe};
use nas::{IoOutcome, Version, mountinfo};

use crate::actions::{self, Check, Health};
use crate::settings::{Resolve, Settings};

pub fn command(spec: &'static KitSpec, name: &str, args: &[String]) -> Option<Outcome> {
    match name {
        "status" => Some(status(spec, args)),
        "probe" => Some(probe_cmd(spec, args)),
        _ => None,
    }
}

fn steps_json(p: &Probe) -> Json {
    let mut steps: Vec<Json> = p
        .steps
        .iter()
        .map(|s| {
            Json::obj()
                .with("step", s.name.as_str())
                .with("ok", true)
                .with("rtt_us", s.rtt.as_micros() as u64)
                .with("detail", s.detail.as_str())
        })
        .collect();
    if let Some(e) = &p.error {
        steps.push(
            Json::obj()
                .with("step", e.step.as_str())
                .with("ok", false)
                .with("rtt_us", e.elapsed.as_micros() as u64)
                .with("detail", format!("{}: {}", e.kind, e.detail)),
        );
    }
    Json::Arr(steps)
}

/// One line per probe step (not yet escaped: see [`say`]).
fn steps_text(p: &Probe) -> Vec<String> {
    let mut out = Vec::new();
    for s in &p.steps {
        out.push(format!(
            "    {:>9.3} ms  {:<26} {}",
            s.rtt.as_secs_f64() * 1e3,
            s.name,
            s.detail
        ));
    }
    if let Some(e) = &p.error {
        out.push(format!(
            "    {:>9.3} ms  {:<26} FAILED: {}: {}",
            e.elapsed.as_secs_f64() * 1e3,
            e.step,
            e.kind,
            e.detail
        ));
    }
    out
}

/// Print one line of text output with its control bytes escaped as the logger does
/// (`\xNN`): mount sources, export names and server answers are not ours, and must not
/// forge lines of their own.
fn say(line: impl AsRef<str>) {
    println!("{}", lkh_common::logging::escape(line.as_ref()));
}

/// A mount's per-superblock options as the kernel shows them (`vers=3,hard,...`).
fn options_text(e: &mountinfo::MountEntry) -> String {
    e.super_options
        .iter()
        .map(|o| match &o.value {
            Some(v) => format!("{}={v}", o.key),
            None => o.key.clone(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The entry mounted at MOUNTPOINT and how it differs from the configuration.
fn found(h: &Health) -> (Option<&mountinfo::MountEntry>, &[String]) {
    match &h.mount {
        State::NotMounted => (None, &[]),
        State::Other(e) => (Some(e), &[]),
        State::Ours { entry, mismatches } => (Some(entry), mismatches),
    }
}

/// The IO check in a few words: not run, its time, or quickCheck's message for it.
fn io_word(h: &Health) -> String {
    match (&h.io, h.problem(Check::Io)) {
        (None, _) => "not run".to_string(),
        (Some(IoOutcome::Ok(d)), _) => format!("ok (within {} us)", d.as_micros()),
        (Some(_), p) => p.map(|p| p.message.clone()).unwrap_or_default(),
    }
}

/// `status` as JSON: every key from the one assessment, the verdict and exit code
/// quickCheck would give included.
fn health_json(tag: &str, h: &Health) -> Json {
    let (entry, mismatches) = found(h);
    let mut m = Json::obj()
        .with("tag", tag)
        .with("source", h.source.as_str())
        .with("mount_point", h.mount_point.as_str())
        .with("version", h.version.as_str())
        .with("negotiated", h.negotiated.map(Version::as_str))
        .with("mount", h.mount_word());
    if let Some(e) = entry {
        m.push("mounted_source", e.source.as_str());
        m.push("fstype", e.fstype.as_str());
        m.push("device", format!("{}:{}", e.major, e.minor));
        m.push("options", options_text(e));
    }
    m.push(
        "mismatches",
        Json::Arr(mismatches.iter().map(|x| Json::from(x.as_str())).collect()),
    );
    m.push("server_ok", h.problem(Check::Server).is_none());
    m.push("server_check", h.server_check.as_str());
    if let Some(w) = h.warning() {
        m.push("warning", w);
    }
    m.push("server_steps", steps_json(&h.probe));
    m.push("io_check", h.io_check.to_string());
    m.push("io", io_word(h));
    h.json(m)
}

/// `status` as text, one entry per line (escaped when printed, by [`say`]).
fn health_text(tag: &str, h: &Health) -> Vec<String> {
    let (entry, mismatches) = found(h);
    let mut t = vec![
        format!(
            "resource {tag}: {}",
            if h.healthy() {
                "healthy"
            } else {
                "NOT healthy"
            }
        ),
        format!(
            "  {} on {} (NFS v{}{})",
            h.source,
            h.mount_point,
            h.version,
            h.negotiated
                .map(|v| format!(", negotiated {v}"))
                .unwrap_or_default()
        ),
    ];
    t.push(match entry {
        Some(e) => format!(
            "  mount: {}: {} {} dev {}:{} {}",
            h.mount_word(),
            e.source,
            e.fstype,
            e.major,
            e.minor,
            options_text(e)
        ),
        None => format!("  mount: {}", h.mount_word()),
    });
    for m in mismatches {
        t.push(format!("    differs: {m}"));
    }
    t.push(format!(
        "  server: {} ({})",
        h.problem(Check::Server)
            .map_or("answers", |p| p.message.as_str()),
        h.server_check
    ));
    t.extend(steps_text(&h.probe));
    if let Some(w) = h.warning() {
        t.push(format!("  warning: {w}"));
    }
    t.push(format!("  io check ({}): {}", h.io_check, io_word(h)));
    t.push(format!("  verdict: {}", h.conclusion()));
    t
}

/// `status`: the assessment quickCheck makes ([`actions::assess`]), shown as text or JSON;
/// changes nothing; the exit code is quickCheck's (as every kit's `status`).
fn status(spec: &'static KitSpec, args: &[String]) -> Outcome {
    let a = lkh_common::parse_hook_args(spec.keys, args, &["--json"])?;
    a.no_operands("usage: status -t TAG [--json]")?;
    let ctx = lkh_common::context(spec, Action::QuickCheck, &a)?;
    let s = Settings::from_ctx(&ctx, Resolve::Never)?;
    let h = actions::assess(&s)?;
    if a.has("--json") {
        println!("{}", health_json(&s.tag, &h));
    } else {
        health_text(&s.tag, &h).iter().for_each(say);
    }
    h.outcome().map(|_| String::new())
}

fn probe_cmd(spec: &'static KitSpec, args: &[String]) -> Outcome {
    let usage = "usage: probe SERVER [EXPORT] [--version V] [--timeout SECONDS] [--json]";
    let a = lkh_common::parse_args(spec.keys, args, &["--json"], &[])?;
    let json = a.has("--json");
    let mut only = lkh_common::Config::defaults(spec.keys);
    for (k, v) in &a.overrides {
        match k.as_str() {
            "TIMEOUT" | "VERSION" => only.set(spec.keys, k, v)?,
            _ => {
                return Err(Failure::usage(format!(
                    "{k} is a resource setting, not an option of probe; {usage}"
                )));
            }
        }
    }
    let given = |k: &str| a.overrides.iter().any(|(o, _)| o == k);
    let timeout = if given("TIMEOUT") {
        only.timeout()
    } else {
        Duration::from_secs(10)
    };
    let version: Option<Version> = match only.get("VERSION").filter(|_| given("VERSION")) {
        Some(v) => Some(v.parse().map_err(Failure::usage)?),
        None => None,
    };
    let (server_s, export) = match a.operands(usage)? {
        [s] => (s.clone(), None),
        [s, e] => (s.clone(), Some(e.clone())),
        _ => return Err(Failure::usage(usage)),
    };
    let server: IpAddr = server_s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| {
            Failure::usage(format!(
                "{server_s:?} is not an IP address: give the NAS's numeric address"
            ))
        })?;
    if let Some(e) = &export {
        nas::options::normalize_export(e).map_err(|e| Failure::usage(e.0))?;
    }
    let deadline = Instant::now() + timeout;
    let survey = probe::survey(server, Instant::now() + timeout / 2);
    let mut probes: Vec<(String, Probe)> = Vec::new();
    let want = |v: Version| version.is_none_or(|w| w == v || (w.is_v4() && v.is_v4()));
    if let Some(e) = &export
        && want(Version::V3)
    {
        let left = deadline.saturating_duration_since(Instant::now());
        probes.push((
            format!("v3 {e}"),
            probe::probe_v3(server, e, Version::V3, Instant::now() + left / 2),
        ));
    }
    if want(Version::V4) {
        let v = version.unwrap_or(Version::V4);
        probes.push((
            "v4".into(),
            probe::probe_v4(server, v, version.is_none(), deadline),
        ));
    }
    // What the probes proved: a NULL alone (the survey) is not an answer when a
    // probe of the NFS request path ran.
    let any_ok = if probes.is_empty() {
        survey.nfs_versions.iter().any(|(_, r)| r.is_ok())
    } else {
        probes.iter().any(|(_, p)| p.ok())
    };
    if json {
        let mut m = Json::obj().with("server", server.to_string());
        match &survey.portmap {
            Ok(list) => m.push(
                "portmap",
                Json::Arr(
                    list.iter()
                        .map(|(prog, vers, prot, port)| {
                            Json::obj()
                                .with("program", *prog)
                                .with("name", program_name(*prog))
                                .with("version", *vers)
                                .with("protocol", if *prot == 6 { "tcp" } else { "udp" })
                                .with("port", *port)
                        })
                        .collect(),
                ),
            ),
            Err(e) => m.push("portmap_error", e.as_str()),
        }
        match &survey.exports {
            Ok(list) => m.push(
                "exports",
                Json::Arr(list.iter().map(|e| Json::from(e.as_str())).collect()),
            ),
            Err(e) => m.push("exports_error", e.as_str()),
        }
        m.push(
            "nfs_null",
            Json::Arr(
                survey
                    .nfs_versions
                    .iter()
                    .map(|(v, r)| {
                        let o = Json::obj().with("version", *v).with("ok", r.is_ok());
                        match r {
                            Ok(d) => o.with("rtt_us", d.as_micros() as u64),
                            Err(e) => o.with("error", e.as_str()),
                        }
                    })
                    .collect(),
            ),
        );
        for (name, p) in &probes {
            m.push(&format!("probe {name}"), steps_json(p));
            if !p.v4_offered.is_empty() || !p.v4_refused.is_empty() {
                let minors =
                    |v: &[u32]| Json::Arr(v.iter().map(|m| Json::from(format!("4.{m}"))).collect());
                m.push("nfs4_minor_offered", minors(&p.v4_offered));
                m.push("nfs4_minor_refused", minors(&p.v4_refused));
            }
        }
        println!("{m}");
    } else {
        say(format!("server {server}"));
        match &survey.portmap {
            Ok(list) => {
                say(format!("  portmapper: {} registrations", list.len()));
                for (prog, vers, prot, port) in list {
                    say(format!(
                        "    {prog:>7} {:<9} v{vers} {:<3} port {port}",
                        program_name(*prog),
                        if *prot == 6 { "tcp" } else { "udp" }
                    ));
                }
            }
            Err(e) => say(format!("  portmapper: {e}")),
        }
        match &survey.exports {
            Ok(list) => say(format!("  exports: {}", list.join(" "))),
            Err(e) => say(format!("  exports: {e}")),
        }
        for (v, r) in &survey.nfs_versions {
            match r {
                Ok(d) => say(format!(
                    "  NFS v{v} NULL on 2049: ok in {:.3} ms",
                    d.as_secs_f64() * 1e3
                )),
                Err(e) => say(format!("  NFS v{v} NULL on 2049: {e}")),
            }
        }
        for (name, p) in &probes {
            say(format!(
                "  probe {name}: {}",
                if p.ok() { "ok" } else { "FAILED" }
            ));
            steps_text(p).iter().for_each(say);
            if !p.v4_offered.is_empty() || !p.v4_refused.is_empty() {
                say(format!(
                    "  NFSv4 minor versions: offered {}; refused {}",
                    or_none(&probe::minors_text(&p.v4_offered)),
                    or_none(&probe::minors_text(&p.v4_refused))
                ));
            }
        }
    }
    let failed_probe = probes
        .iter()
        .find_map(|(name, p)| p.error.as_ref().map(|e| (name, e)));
    if any_ok {
        Ok(String::new())
    } else if let Some((name, e)) = failed_probe.filter(|(_, e)| {
        matches!(
            e.kind,
            probe::FailKind::Mismatch
                | probe::FailKind::Denied
                | probe::FailKind::Malformed
                | probe::FailKind::Other
        )
    }) {
        Err(Failure::failed(format!(
            "server {server} answers but probe {name} failed: {e}"
        )))
    } else if let Some(answered) = answered_nulls(&survey) {
        // a NULL answered (e.g. v3 on a v3-only server asked without EXPORT): the server is
        // up, only what the probes asked for was not proven
        let what = failed_probe.map_or_else(
            || "no probe of the NFS request path answered".to_string(),
            |(name, e)| format!("probe {name} failed: {e}"),
        );
        let fix = if export.is_none() && answered.contains("v3") {
            format!(
                "give the export (lkh-nas probe {server} EXPORT) to check NFSv3 through MOUNT and GETATTR"
            )
        } else {
            "check the server's NFS services and the version asked for".to_string()
        };
        Err(Failure::failed(format!(
            "server {server} answers NFS {answered} NULL on port 2049, but {what}: {fix}"
        )))
    } else {
        let refused = !survey.nfs_versions.is_empty()
            && survey
                .nfs_versions
                .iter()
                .all(|(_, r)| r.as_ref().is_err_and(|e| e.contains("refused")));
        Err(Failure::failed(if refused {
            format!(
                "server {server} refuses NFS connections on port 2049: check that the NFS service runs on the NAS and that no firewall rejects it"
            )
        } else {
            format!(
                "server {server} does not answer NFS within {} s: check that the NAS is up and reachable from this node",
                timeout.as_secs()
            )
        }))
    }
}

/// The NFS versions whose NULL answered in the survey ("v3", "v3 and v4"), if any.
fn answered_nulls(survey: &probe::Survey) -> Option<String> {
    let v: Vec<String> = survey
        .nfs_versions
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(v, _)| format!("v{v}"))
        .collect();
    (!v.is_empty()).then(|| v.join(" and "))
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "none" } else { s }
}

fn program_name(p: u32) -> &'static str {
    match p {
        100_000 => "portmap",
        100_003 => "nfs",
        100_005 => "mountd",
        100_021 => "nlockmgr",
        100_024 => "status",
        100_011 => "rquotad",
        100_227 => "nfs_acl",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lkh_common::{Exit, Hint};
    use nas::probe::{FailKind, ProbeError};

    use super::*;
    use crate::actions::Problem;

    /// A mountinfo line whose source someone else chose: `\012` decodes to a newline.
    const FORGED: &str = "40 1 0:50 / /mnt/data rw - nfs 10.0.2.2:/x\\012resource\\040t:\\040healthy rw,vers=3,addr=10.0.2.2\n";

    fn health(mount: State, problems: Vec<Problem>) -> Health {
        Health {
            source: "10.0.2.2:/export".into(),
            mount_point: "/mnt/data".into(),
            version: Version::V3,
            negotiated: None,
            server: "10.0.2.2 (NFS v3)".into(),
            server_check: "portmapper, MOUNT MNT, NFS NULL + GETATTR".into(),
            io_check: nas::IoCheck::Stat,
            mount,
            probe: Probe::default(),
            io: None,
            learnt: None,
            problems,
        }
    }

    fn problem(check: Check, verdict: &'static str) -> Problem {
        Problem {
            check,
            verdict,
            message: format!("{verdict}: details"),
        }
    }

    fn get<'a>(json: &'a str, key: &str) -> &'a str {
        let k = format!("\"{key}\":");
        let rest = &json[json.find(&k).unwrap_or_else(|| panic!("{key} in {json}")) + k.len()..];
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        &rest[..end]
    }

    /// Text and JSON are two renderings of one value: the same exit code, verdict and
    /// message as quickCheck's, in every state.
    #[test]
    fn text_and_json_agree_with_quick_check() {
        let entry = mountinfo::parse(
            "40 1 0:50 / /mnt/data rw - nfs 10.0.2.2:/export rw,vers=3,addr=10.0.2.2\n",
        )
        .unwrap()
        .remove(0);
        let ours = State::Ours {
            entry,
            mismatches: vec![],
        };
        let mut healthy = health(ours.clone(), vec![]);
        healthy.io = Some(IoOutcome::Ok(Duration::from_micros(7)));
        let mut warned = healthy.clone();
        warned.probe.mount_warning = Some("timed out".into());
        let mut silent = health(
            ours.clone(),
            vec![problem(Check::Server, "server not answering")],
        );
        silent.probe.error = Some(ProbeError {
            step: "nfs NULL".into(),
            kind: FailKind::Timeout,
            detail: "no answer".into(),
            elapsed: Duration::from_millis(3),
        });
        let cases = [
            (healthy, 0, "healthy"),
            (warned, 0, "healthy"),
            (
                health(
                    State::NotMounted,
                    vec![problem(Check::Mount, "not mounted")],
                ),
                1,
                "not mounted",
            ),
            (silent, 1, "server not answering"),
            (
                health(ours, vec![problem(Check::Io, "mount wedged")]),
                1,
                "mount wedged",
            ),
        ];
        for (h, exit, verdict) in cases {
            let qc = h.outcome();
            assert_eq!(qc.as_ref().map_or_else(|f| f.exit.code(), |_| 0), exit);
            let json = health_json("t", &h).to_string();
            assert_eq!(get(&json, "exit"), exit.to_string(), "{json}");
            assert_eq!(get(&json, "healthy"), (exit == 0).to_string(), "{json}");
            assert_eq!(get(&json, "verdict"), format!("\"{verdict}\""), "{json}");
            let msg = qc.clone().unwrap_or_else(|f| f.message);
            assert!(json.contains(&format!("\"message\":\"{msg}\"")), "{json}");
            let text = health_text("t", &h);
            let last = text.last().unwrap();
            assert_eq!(last, &format!("  verdict: exit {exit}: {msg}"));
            assert_eq!(
                text[0],
                format!(
                    "resource t: {}",
                    if exit == 0 { "healthy" } else { "NOT healthy" }
                )
            );
            assert_eq!(
                h.warning().is_some(),
                text.iter().any(|l| l.contains("new mounts would fail")),
            );
            assert_eq!(
                h.warning().is_some(),
                json.contains("new mounts would fail")
            );
        }
        let not_mounted = health(
            State::NotMounted,
            vec![problem(Check::Mount, "not mounted")],
        );
        assert_eq!(not_mounted.outcome().unwrap_err().hint, Hint::NotRunning);
    }

    /// MOUNT silent beside a working NFS: a warning; beside a silent NFS (the whole server
    /// frozen): no "this one works" warning, only the failure.
    #[test]
    fn mount_warning_only_while_nfs_answers() {
        let mut h = health(State::NotMounted, vec![]);
        h.probe.mount_warning = Some("mount connect: no answer".into());
        let w = h.warning().expect("a warning while NFS answers");
        assert!(w.contains("new mounts would fail; this one works"), "{w}");
        h.probe.error = Some(ProbeError {
            step: "nfs connect".into(),
            kind: FailKind::Timeout,
            detail: "no answer".into(),
            elapsed: Duration::from_millis(3),
        });
        h.problems = vec![problem(Check::Server, "server not answering")];
        assert_eq!(h.warning(), None);
        assert_eq!(h.exit(), Exit::Failed);
    }

    /// A mount source with a newline in it stays on its line in text output (escaped as the
    /// logger does) and is a JSON string escape in JSON.
    #[test]
    fn foreign_names_cannot_forge_lines() {
        let e = mountinfo::parse(FORGED).unwrap().remove(0);
        assert!(e.source.contains('\n'), "{e:?}");
        let h = health(State::Other(e), vec![problem(Check::Mount, "not mounted")]);
        let lines: Vec<String> = health_text("t", &h)
            .iter()
            .map(|l| lkh_common::logging::escape(l))
            .collect();
        assert!(lines.iter().all(|l| !l.contains('\n')));
        assert!(
            lines
                .iter()
                .any(|l| l.contains("10.0.2.2:/x\\x0aresource t: healthy")),
            "{lines:?}"
        );
        let json = health_json("t", &h).to_string();
        assert!(!json.contains('\n'));
        assert!(json.contains("10.0.2.2:/x\\nresource t: healthy"), "{json}");
    }
}
