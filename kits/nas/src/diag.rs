//! Diagnostics: `status -t TAG [--json]` and `probe SERVER [EXPORT]`.
//! Neither changes anything; both are bounded by their timeout.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use lkh_common::{Action, Failure, Json, KitSpec, Outcome};
use nas::ops::{self, State};
use nas::probe::{self, Probe};
use nas::{IoOutcome, Version, mountinfo};

use crate::actions;
use crate::settings;

pub fn command(spec: &'static KitSpec, name: &str, args: &[String]) -> Option<Outcome> {
    match name {
        "status" => Some(status(spec, args)),
        "probe" => Some(probe_cmd(args)),
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

fn steps_text(p: &Probe) -> String {
    let mut out = String::new();
    for s in &p.steps {
        out += &format!(
            "    {:>9.3} ms  {:<26} {}\n",
            s.rtt.as_secs_f64() * 1e3,
            s.name,
            s.detail
        );
    }
    if let Some(e) = &p.error {
        out += &format!(
            "    {:>9.3} ms  {:<26} FAILED: {}: {}\n",
            e.elapsed.as_secs_f64() * 1e3,
            e.step,
            e.kind,
            e.detail
        );
    }
    out
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

fn status(spec: &'static KitSpec, args: &[String]) -> Outcome {
    let a = lkh_common::parse_hook_args(spec.keys, args, &["--json"])?;
    let ctx = lkh_common::context(spec, Action::QuickCheck, &a)?;
    let s = settings::load(&ctx, false)?;
    let state = ops::state(&s.cfg, &actions::mounts()?);
    let ours = matches!(state, State::Ours { .. });
    let (p, io) = actions::probe_and_io(&s, ours);
    let (mount_word, entry, mismatches) = match &state {
        State::NotMounted => ("not mounted", None, vec![]),
        State::Other(e) => ("something else mounted", Some(e.clone()), vec![]),
        State::Ours { entry, mismatches } if mismatches.is_empty() => {
            ("mounted", Some(entry.clone()), vec![])
        }
        State::Ours { entry, mismatches } => (
            "mounted, options differ",
            Some(entry.clone()),
            mismatches.clone(),
        ),
    };
    let server_problem = actions::probe_failure(&s, &p);
    let io_problem = io.as_ref().and_then(|o| actions::io_failure(&s, o));
    let healthy = mount_word == "mounted" && server_problem.is_none() && io_problem.is_none();
    let io_word = match &io {
        None => "not run".to_string(),
        Some(IoOutcome::Ok(d)) => format!("ok (within {} us)", d.as_micros()),
        Some(_) => io_problem.clone().unwrap_or_default(),
    };
    if a.has("--json") {
        let mut m = Json::obj()
            .with("tag", s.tag.as_str())
            .with("healthy", healthy)
            .with("source", s.cfg.source())
            .with("mount_point", s.cfg.mount_point.as_str())
            .with("version", s.cfg.version.as_str())
            .with("mount", mount_word);
        if let Some(e) = &entry {
            m.push("mounted_source", e.source.as_str());
            m.push("fstype", e.fstype.as_str());
            m.push("device", format!("{}:{}", e.major, e.minor));
            m.push("options", options_text(e));
        }
        m.push(
            "mismatches",
            Json::Arr(mismatches.iter().map(|x| Json::from(x.as_str())).collect()),
        );
        m.push("server_ok", server_problem.is_none());
        if let Some(w) = &p.mount_warning {
            m.push(
                "warning",
                format!(
                    "MOUNT service does not answer ({w}): new mounts would fail; this one works"
                ),
            );
        }
        m.push("server_steps", steps_json(&p));
        m.push("io_check", s.io_check.to_string());
        m.push("io", io_word);
        println!("{m}");
    } else {
        println!(
            "resource {}: {}",
            s.tag,
            if healthy { "healthy" } else { "NOT healthy" }
        );
        println!(
            "  {} on {} (NFS v{})",
            s.cfg.source(),
            s.cfg.mount_point,
            s.cfg.version
        );
        match &entry {
            Some(e) => println!(
                "  mount: {mount_word}: {} {} dev {}:{} {}",
                e.source,
                e.fstype,
                e.major,
                e.minor,
                options_text(e)
            ),
            None => println!("  mount: {mount_word}"),
        }
        for m in &mismatches {
            println!("    differs: {m}");
        }
        println!(
            "  server: {}",
            server_problem.as_deref().unwrap_or("answers")
        );
        print!("{}", steps_text(&p));
        if let Some(w) = &p.mount_warning {
            println!(
                "  warning: the MOUNT service does not answer ({w}): new mounts would fail; this one works"
            );
        }
        println!("  io check ({}): {io_word}", s.io_check);
    }
    Ok(String::new())
}

fn probe_cmd(args: &[String]) -> Outcome {
    let usage = "usage: probe SERVER [EXPORT] [--version V] [--timeout SECONDS] [--json]";
    let mut pos = Vec::new();
    let mut json = false;
    let mut timeout = Duration::from_secs(10);
    let mut version: Option<Version> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        match flag {
            "--json" => json = true,
            "--timeout" => {
                let v = inline
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| Failure::usage(format!("--timeout needs seconds; {usage}")))?;
                let n: u64 = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=3600).contains(n))
                    .ok_or_else(|| {
                        Failure::usage(format!("--timeout {v}: give 1 to 3600 seconds"))
                    })?;
                timeout = Duration::from_secs(n);
            }
            "--version" => {
                let v = inline
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| Failure::usage(format!("--version needs a value; {usage}")))?;
                version = Some(v.parse().map_err(Failure::usage)?);
            }
            f if f.starts_with('-') => {
                return Err(Failure::usage(format!("unknown option {f}; {usage}")));
            }
            _ => pos.push(a.clone()),
        }
    }
    let (server_s, export) = match pos.as_slice() {
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
                "probe: {server_s:?} is not an IP address: give the NAS's numeric address"
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
        println!("server {server}");
        match &survey.portmap {
            Ok(list) => {
                println!("  portmapper: {} registrations", list.len());
                for (prog, vers, prot, port) in list {
                    println!(
                        "    {prog:>7} {:<9} v{vers} {:<3} port {port}",
                        program_name(*prog),
                        if *prot == 6 { "tcp" } else { "udp" }
                    );
                }
            }
            Err(e) => println!("  portmapper: {e}"),
        }
        match &survey.exports {
            Ok(list) => println!("  exports: {}", list.join(" ")),
            Err(e) => println!("  exports: {e}"),
        }
        for (v, r) in &survey.nfs_versions {
            match r {
                Ok(d) => println!(
                    "  NFS v{v} NULL on 2049: ok in {:.3} ms",
                    d.as_secs_f64() * 1e3
                ),
                Err(e) => println!("  NFS v{v} NULL on 2049: {e}"),
            }
        }
        for (name, p) in &probes {
            println!("  probe {name}: {}", if p.ok() { "ok" } else { "FAILED" });
            print!("{}", steps_text(p));
            if !p.v4_offered.is_empty() || !p.v4_refused.is_empty() {
                println!(
                    "  NFSv4 minor versions: offered {}; refused {}",
                    or_none(&probe::minors_text(&p.v4_offered)),
                    or_none(&probe::minors_text(&p.v4_refused))
                );
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
            probe::FailKind::Mismatch | probe::FailKind::Denied | probe::FailKind::Other
        )
    }) {
        Err(Failure::failed(format!(
            "server {server} answers but probe {name} failed: {e}"
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
