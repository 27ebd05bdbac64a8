//! Diagnostics that change nothing: `status` and `probe`.

use std::net::IpAddr;

use ip_monitor::fmt_mac;
use ip_monitor::probe::{self, Outcome as ProbeOutcome, Target};
use lkh_common::{Action, Config, Failure, Json, KitSpec, Outcome};

use crate::actions::{describe_targets, link_problem, plan};
use crate::settings::{Live, Marker, Settings};

pub fn command(spec: &'static KitSpec, name: &str, args: &[String]) -> Option<Outcome> {
    match name {
        "status" => Some(status(spec, args)),
        "probe" => Some(probe_cmd(spec, args)),
        _ => None,
    }
}

fn results_json(results: &[ProbeOutcome]) -> Json {
    Json::Arr(
        results
            .iter()
            .map(|r| {
                let mut o = Json::obj()
                    .with("target", r.addr.to_string())
                    .with("answered", r.answer.is_some());
                if let Some(a) = r.answer {
                    o.push("method", a.method.name());
                    o.push("rtt_ms", a.rtt.as_secs_f64() * 1000.0);
                    o.push("mac", a.mac.map(|m| fmt_mac(&m)));
                }
                o.push("error", r.error.clone());
                o
            })
            .collect(),
    )
}

fn results_text(results: &[ProbeOutcome]) -> String {
    let mut s = String::new();
    for r in results {
        match r.answer {
            Some(a) => {
                s += &format!(
                    "  {:<24} answers by {} in {:.3} ms",
                    r.addr,
                    a.method.name(),
                    a.rtt.as_secs_f64() * 1000.0
                );
                if let Some(m) = a.mac {
                    s += &format!(" from {}", fmt_mac(&m));
                }
                s.push('\n');
            }
            None => {
                s += &format!("  {:<24} no answer", r.addr);
                if let Some(e) = &r.error {
                    s += &format!(" ({e})");
                }
                s.push('\n');
            }
        }
    }
    s
}

fn status(spec: &'static KitSpec, args: &[String]) -> Outcome {
    let a = lkh_common::parse_hook_args(spec.keys, args, &["--json"])?;
    let ctx = lkh_common::context(spec, Action::QuickCheck, &a)?;
    let s = Settings::from_config(&ctx.config, &ctx.conf_file(), true)?;
    let deadline = ctx.deadline.instant();
    let marker = Marker::new(&ctx.tag);
    let mut live = Live::resolve(&s, deadline)?;
    live.check_not_own_address(&s, &marker)?;
    let targets = live.targets(&s, &s.targets, s.probe, deadline)?;
    let ours = live.ours(&s).cloned();
    let link_bad = link_problem(&live);
    let results = probe::probe(&plan(&s, &live, false), &targets, deadline)
        .map_err(|e| Failure::failed(format!("{}: probing failed: {e}", s.interface)))?;
    let answered = results.iter().any(|r| r.answer.is_some());
    let healthy = ours.is_some() && (s.no_link_check || link_bad.is_none()) && answered;
    let verdict = if ours.is_none() {
        "address missing"
    } else if link_bad.is_some() && !s.no_link_check {
        "link down"
    } else if !answered {
        "link up but no target answers: the virtual switch's uplink or the network beyond it is down"
    } else {
        "healthy"
    };
    if a.has("--json") {
        let j = Json::obj()
            .with("tag", ctx.tag.to_string())
            .with("address", s.address.to_string())
            .with("interface", s.interface.clone())
            .with("present", ours.is_some())
            .with("flags", ours.as_ref().map(|o| format!("{:#x}", o.flags)))
            .with(
                "link",
                Json::obj()
                    .with("index", live.link.index)
                    .with("admin_up", live.link.admin_up())
                    .with("carrier", live.link.usable())
                    .with("mac", live.link.mac.map(|m| fmt_mac(&m)))
                    .with("checked", !s.no_link_check),
            )
            .with("probe", describe_targets(&targets))
            .with("targets", results_json(&results))
            .with("healthy", healthy)
            .with("verdict", verdict);
        println!("{j}");
    } else {
        let mut t = format!("{} on {}: {verdict}\n", s.address, s.interface);
        t += &format!(
            "  address   {}\n",
            match &ours {
                Some(o) => format!("present as {} (flags {:#x})", o.cidr, o.flags),
                None => "missing".into(),
            }
        );
        t += &format!(
            "  link      {} (index {}, mac {}){}\n",
            link_bad.as_deref().unwrap_or("up, carrier"),
            live.link.index,
            live.link
                .mac
                .map(|m| fmt_mac(&m))
                .unwrap_or_else(|| "-".into()),
            if s.no_link_check {
                ", not checked (IP_NOLINKCHECK=1)"
            } else {
                ""
            }
        );
        t += &format!("  targets   {}\n", describe_targets(&targets));
        t += &results_text(&results);
        print!("{t}");
    }
    if healthy {
        Ok(String::new())
    } else {
        Err(Failure::failed(format!(
            "{} on {}: {verdict}",
            s.address, s.interface
        )))
    }
}

fn probe_cmd(spec: &'static KitSpec, args: &[String]) -> Outcome {
    let a = lkh_common::parse_hook_args(spec.keys, args, &["--json"])?;
    let mut words = Vec::new();
    for w in &a.ignored {
        if w.starts_with('-') {
            return Err(Failure::usage(format!(
                "probe: unknown option {w}: see --help"
            )));
        }
        let ip: IpAddr = w
            .parse()
            .map_err(|_| Failure::usage(format!("probe: '{w}' is not an IPv4 or IPv6 address")))?;
        words.push(ip);
    }
    let (config, conf): (Config, std::path::PathBuf) = if a.tag.is_some() {
        let ctx = lkh_common::context(spec, Action::QuickCheck, &a)?;
        let f = ctx.conf_file();
        (ctx.config, f)
    } else {
        let mut c = Config::defaults(spec.keys);
        for (k, v) in &a.overrides {
            c.set(spec.keys, k, v)?;
        }
        (
            c,
            std::path::PathBuf::from("the command line (--interface IF)"),
        )
    };
    let s = Settings::from_config(&config, &conf, false)?;
    let deadline = std::time::Instant::now() + config.timeout();
    let mut live = Live::resolve(&s, deadline)?;
    let wanted = if words.is_empty() {
        s.targets.clone()
    } else {
        words
    };
    let targets: Vec<Target> = live.targets(&s, &wanted, s.probe, deadline)?;
    let results = probe::probe(&plan(&s, &live, false), &targets, deadline)
        .map_err(|e| Failure::failed(format!("{}: probing failed: {e}", s.interface)))?;
    if a.has("--json") {
        println!(
            "{}",
            Json::obj()
                .with("interface", s.interface.clone())
                .with("probe", describe_targets(&targets))
                .with("targets", results_json(&results))
        );
    } else {
        print!(
            "{} via {}:\n{}",
            describe_targets(&targets),
            s.interface,
            results_text(&results)
        );
    }
    if results.iter().any(|r| r.answer.is_some()) {
        Ok(String::new())
    } else {
        Err(Failure::failed(format!(
            "{}: no target answers",
            s.interface
        )))
    }
}
