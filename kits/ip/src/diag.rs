//! Diagnostics that change nothing: `status` (the one assessment, rendered) and `probe`.

use std::net::IpAddr;

use ip_monitor::fmt_mac;
use ip_monitor::probe::{self, Probed, Target};
use lkh_common::{Action, Assessment, Config, Failure, Json, KitSpec, Outcome, Tag};

use crate::assess::{self, Health, Look, Verdict, describe_targets, link_problem, plan};
use crate::settings::{Live, Marker, Settings};

pub fn command(spec: &'static KitSpec, name: &str, args: &[String]) -> Option<Outcome> {
    match name {
        "status" => Some(status(spec, args)),
        "probe" => Some(probe_cmd(spec, args)),
        _ => None,
    }
}

fn results_json(results: &[Probed]) -> Json {
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

fn results_text(results: &[Probed]) -> String {
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

/// `status`: the assessment quickCheck makes ([`assess::assess`]), waiting for every
/// target's answer, shown as text or JSON; the exit code is quickCheck's.
fn status(spec: &'static KitSpec, args: &[String]) -> Outcome {
    let a = lkh_common::parse_hook_args(spec.keys, args, &["--json"])?;
    a.no_operands("usage: status -t TAG [--json]")?;
    let ctx = lkh_common::context(spec, Action::QuickCheck, &a)?;
    let s = Settings::from_ctx(&ctx)?;
    let deadline = assess::check_deadline(&ctx, &s);
    let h = assess::assess(&s, &Marker::new(&ctx.tag), deadline, Look::AllAnswers)?;
    if a.has("--json") {
        println!("{}", health_json(&ctx.tag, &h));
    } else {
        print!("{}", health_text(&h));
    }
    h.status()
}

fn not_probed(h: &Health) -> &'static str {
    match h.verdict {
        Verdict::AddressMissing | Verdict::DuplicateAddress => "not probed: address",
        _ => "not probed: link down",
    }
}

fn health_json(tag: &Tag, h: &Health) -> Json {
    let facts = Json::obj()
        .with("tag", tag.to_string())
        .with("address", h.address.to_string())
        .with("interface", h.interface.clone())
        .with("present", h.present.is_some())
        .with(
            "flags",
            h.present.as_ref().map(|o| format!("{:#x}", o.flags)),
        )
        .with(
            "link",
            Json::obj()
                .with("index", h.link.index)
                .with("admin_up", h.link.admin_up())
                .with("carrier", h.link.usable())
                .with("mac", h.link.mac.map(|m| fmt_mac(&m)))
                .with("checked", h.link_checked),
        )
        .with("probe", describe_targets(&h.targets))
        .with("targets", results_json(&h.probes));
    h.json(facts)
}

fn health_text(h: &Health) -> String {
    let mut t = format!("{} on {}: {}\n", h.address, h.interface, h.verdict());
    t += &format!(
        "  address   {}\n",
        match &h.present {
            Some(o) if o.dad_failed() => format!(
                "present as {} (flags {:#x}), duplicate address detection failed",
                o.cidr, o.flags
            ),
            Some(o) => format!("present as {} (flags {:#x})", o.cidr, o.flags),
            None => "missing".into(),
        }
    );
    t += &format!(
        "  link      {} (index {}, mac {}){}\n",
        link_problem(&h.link).as_deref().unwrap_or("up, carrier"),
        h.link.index,
        h.link
            .mac
            .map(|m| fmt_mac(&m))
            .unwrap_or_else(|| "-".into()),
        if h.link_checked {
            ""
        } else {
            ", not checked (IP_NOLINKCHECK=1)"
        }
    );
    t += &format!("  targets   {}\n", describe_targets(&h.targets));
    if h.probes.is_empty() {
        t += &format!("  ({})\n", not_probed(h));
    }
    t += &results_text(&h.probes);
    t += &format!("  verdict   {}\n", h.conclusion());
    t
}

fn probe_cmd(spec: &'static KitSpec, args: &[String]) -> Outcome {
    let a = lkh_common::parse_hook_args(spec.keys, args, &["--json"])?;
    let mut words = Vec::new();
    for w in a.operands(
        "usage: probe [-t TAG | --interface IF] [--probe arp|icmp|both] [--json] [TARGET...]",
    )? {
        let ip: IpAddr = w
            .parse()
            .map_err(|_| Failure::usage(format!("'{w}' is not an IPv4 or IPv6 address")))?;
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
    let results = probe::probe(&plan(&s, &live, Look::AllAnswers), &targets, deadline)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ip_monitor::netlink::{Address, Link};
    use ip_monitor::probe::{Answer, Method, Probed, Target};
    use lkh_common::Hint;

    use super::*;
    use crate::assess::Problem;

    fn health(verdict: Verdict) -> Health {
        let address = "192.0.2.10/24".parse().unwrap();
        let gw = "192.0.2.1".parse().unwrap();
        Health {
            address,
            interface: "eth0".into(),
            link_checked: true,
            targets: vec![Target {
                addr: gw,
                arp_from: None,
                icmp: true,
            }],
            grace: Duration::from_secs(3),
            present: (verdict != Verdict::AddressMissing).then_some(Address {
                ifindex: 2,
                cidr: address,
                flags: 0x80,
                scope: 0,
                label: None,
            }),
            link: Link {
                index: 2,
                name: "eth0".into(),
                flags: 0x1 | 0x40 | 0x10000,
                mac: Some([2, 0, 0, 0, 0, 1]),
                oper_state: Some(6),
                carrier: Some(true),
                mtu: Some(1500),
            },
            probes: probed(&verdict)
                .then_some(Probed {
                    addr: gw,
                    answer: matches!(verdict, Verdict::Healthy { .. }).then_some(Answer {
                        method: Method::Icmp,
                        rtt: Duration::from_micros(300),
                        mac: None,
                    }),
                    error: None,
                })
                .into_iter()
                .collect(),
            verdict,
        }
    }

    /// Rounds probe targets only once the address and the link are fine.
    fn probed(v: &Verdict) -> bool {
        match v {
            Verdict::Healthy { .. } => true,
            Verdict::Failing { problem, .. } => matches!(problem, Problem::NoAnswer(_)),
            _ => false,
        }
    }

    /// Every verdict: quickCheck's exit code (from the outcome), the JSON's `exit`, `healthy`
    /// and `verdict`, and the text's lines all come from the one value and agree.
    #[test]
    fn text_and_json_render_the_one_verdict() {
        let tag = Tag::parse("vip").unwrap();
        let cases = [
            (Verdict::Healthy { failed_rounds: 0 }, 0, "healthy"),
            (Verdict::Healthy { failed_rounds: 2 }, 0, "healthy"),
            (Verdict::AddressMissing, 1, "address missing"),
            (Verdict::DuplicateAddress, 1, "duplicate address"),
            (
                Verdict::Failing {
                    problem: Problem::LinkDown("no carrier".into()),
                    persisted: Some(Duration::from_secs(3)),
                    cut_short: false,
                },
                1,
                "link down",
            ),
            (
                Verdict::Failing {
                    problem: Problem::NoAnswer("asked 192.0.2.1 by icmp".into()),
                    persisted: Some(Duration::from_millis(1500)),
                    cut_short: true,
                },
                1,
                "link up but no target answers",
            ),
        ];
        for (verdict, code, name) in cases {
            let h = health(verdict.clone());
            let out = h.outcome();
            assert_eq!(out.is_ok(), code == 0, "{verdict:?}");
            assert_eq!(h.exit().code(), code, "{verdict:?}");
            let json = health_json(&tag, &h).to_string();
            assert!(json.contains(&format!("\"exit\":{code}")), "{json}");
            assert!(
                json.contains(&format!("\"healthy\":{}", code == 0)),
                "{json}"
            );
            assert!(json.contains(&format!("\"verdict\":\"{name}")), "{json}");
            let text = health_text(&h);
            assert!(
                text.starts_with(&format!("192.0.2.10/24 on eth0: {name}")),
                "{text}"
            );
            assert!(text.contains(&format!("verdict   exit {code}: ")), "{text}");
            if let Err(f) = out {
                assert!(
                    json.contains(&Json::from(f.message.as_str()).to_string()),
                    "{json}"
                );
                assert!(text.contains(&f.message), "{text}");
            }
        }
    }

    #[test]
    fn failures_say_what_and_how_long() {
        let h = health(Verdict::AddressMissing);
        let f = h.outcome().unwrap_err();
        assert_eq!(f.hint, Hint::NotRunning, "not active here: {f}");
        assert!(health_text(&h).contains("address   missing"));
        assert!(health_text(&h).contains("not probed"));
        let h = health(Verdict::Failing {
            problem: Problem::NoAnswer("asked 192.0.2.1 by icmp".into()),
            persisted: Some(Duration::from_millis(1500)),
            cut_short: true,
        });
        let f = h.outcome().unwrap_err();
        assert!(f.message.contains("uplink"), "{f}");
        assert!(f.message.contains("less than GRACE=3s"), "{f}");
        let h = health(Verdict::Failing {
            problem: Problem::LinkDown("no carrier".into()),
            persisted: None,
            cut_short: false,
        });
        let f = h.outcome().unwrap_err();
        assert!(!f.message.contains("failing for"), "{f}");
    }
}
