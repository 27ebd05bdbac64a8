//! The one assessment of the resource ([`assess`]), which quickCheck, recover and `status`
//! share, and its judgement: pure functions of what was observed — [`judge_targets`] (no
//! targets because the link is down), [`judge_first`] (the address, then the targets),
//! [`judge_link`] and [`judge_answers`] (one probe round), [`judge_rounds`] (after GRACE) —
//! tested case by case below without a network. [`assess`] only observes (netlink, the
//! probes) and asks them.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use ip_monitor::Cidr;
use ip_monitor::grace::{self, Evaluation, Round, SystemClock};
use ip_monitor::netlink::{Address, Link};
use ip_monitor::probe::{self, Plan, Probed, Target};
use lkh_common::{Assessment, Failure, HookCtx, Outcome};

use crate::settings::{Live, Marker, Settings};

/// The earlier of `deadline` and `d` from now.
pub fn within(deadline: Instant, d: Duration) -> Instant {
    deadline.min(Instant::now() + d)
}

/// The deadline of one look at the resource: the hook's, capped by IP_QUICKCHECK_TIMEOUT.
/// quickCheck and `status` use the same.
pub fn check_deadline(ctx: &HookCtx, s: &Settings) -> Instant {
    within(ctx.deadline.instant(), s.quickcheck_timeout)
}

/// Why a check round failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    LinkDown(String),
    NoAnswer(String),
}

impl Problem {
    pub fn message(&self, interface: &str) -> String {
        match self {
            Problem::LinkDown(why) => format!(
                "{interface}: link down ({why}): check the virtual NIC's connection to its virtual switch; if this NIC never reports its link, set IP_NOLINKCHECK=1"
            ),
            Problem::NoAnswer(detail) => format!(
                "{interface}: link up but no target answers — the virtual switch's uplink or the network beyond it is down ({detail}); local recovery cannot fix this"
            ),
        }
    }
}

/// How far one look goes once the address and the link are fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// Stop at the first target that answers (quickCheck, recover).
    FirstAnswer,
    /// Wait for every target's answer (`status` shows them all). The verdict is the same:
    /// any answer counts.
    AllAnswers,
}

/// The verdict of one look at the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Address present, link up (or not checked), a target answered; `failed_rounds` rounds
    /// failed before that, within GRACE (a live-migration pause).
    Healthy { failed_rounds: u32 },
    /// ADDRESS is not on INTERFACE: the resource is not active here.
    AddressMissing,
    /// The kernel's IPv6 duplicate address detection failed for ADDRESS.
    DuplicateAddress,
    /// Link down or no target answering, every round for `persisted` (`None`: decided without
    /// probe rounds — a downed interface lost the default route the target came from).
    Failing {
        problem: Problem,
        persisted: Option<Duration>,
        /// The time limit ended the check before GRACE had passed.
        cut_short: bool,
    },
}

/// What one look at the resource found: quickCheck's answer, and all `status` shows.
#[derive(Debug, Clone)]
pub struct Health {
    /// What was checked: ADDRESS on INTERFACE, the link (unless IP_NOLINKCHECK), these
    /// targets (empty when none could be found), failures judged after `grace`.
    pub address: Cidr,
    pub interface: String,
    pub link_checked: bool,
    pub targets: Vec<Target>,
    pub grace: Duration,
    /// What was found: ADDRESS as assigned (any prefix length), the interface as last read,
    /// what each target did in the last probe round (empty when no round probed).
    pub present: Option<Address>,
    pub link: Link,
    pub probes: Vec<Probed>,
    pub verdict: Verdict,
}

impl Assessment for Health {
    /// quickCheck's answer: the one-line summary, or the failure with its exit code.
    fn outcome(&self) -> Outcome {
        let (a, i) = (&self.address, &self.interface);
        match &self.verdict {
            Verdict::Healthy { failed_rounds: 0 } => Ok(format!(
                "{a} on {i} is healthy: link up, targets answer ({})",
                describe_targets(&self.targets)
            )),
            Verdict::Healthy { .. } => Ok(format!("{a} on {i} is healthy after a transient failure")),
            // without the address the resource is not active here (a Pacemaker probe's "not running")
            Verdict::AddressMissing => Err(Failure::failed(format!(
                "{a} is not on {i}: address missing (deleted by someone or something on this node): recover re-adds it"
            ))
            .not_running()),
            Verdict::DuplicateAddress => Err(Failure::failed(format!(
                "{a} on {i}: another host uses this address (IPv6 duplicate address detection failed): find it and free the address"
            ))),
            Verdict::Failing {
                problem,
                persisted,
                cut_short,
            } => {
                let mut m = problem.message(i);
                match persisted {
                    Some(p) if *cut_short => {
                        m += &format!(
                            " [failing for {:.1}s when the time limit ended the check, less than GRACE={}s]",
                            p.as_secs_f64(),
                            self.grace.as_secs()
                        )
                    }
                    Some(p) => m += &format!(" [failing for {:.1}s]", p.as_secs_f64()),
                    None => {}
                }
                Err(Failure::failed(m))
            }
        }
    }

    /// The verdict in a few words.
    fn verdict(&self) -> Cow<'_, str> {
        Cow::Borrowed(match &self.verdict {
            Verdict::Healthy { .. } => "healthy",
            Verdict::AddressMissing => "address missing",
            Verdict::DuplicateAddress => "duplicate address",
            Verdict::Failing {
                problem: Problem::LinkDown(_),
                ..
            } => "link down",
            Verdict::Failing {
                problem: Problem::NoAnswer(_),
                ..
            } => {
                "link up but no target answers: the virtual switch's uplink or the network beyond it is down"
            }
        })
    }
}

/// What the look decides before any probe round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum First {
    /// The verdict, without probing.
    Decided(Verdict),
    /// The address is there: probe these targets, in rounds judged after GRACE.
    Probe(Vec<Target>),
}

/// The targets to probe, from what looking for them gave (`found`): `None` when there are
/// none because the link is down — taking an interface down deletes its routes, so the
/// default gateway is gone with it: that is the link being down, not a bad configuration.
pub fn judge_targets(
    s: &Settings,
    found: Result<Vec<Target>, Failure>,
    link: &Link,
) -> Result<Option<Vec<Target>>, Failure> {
    match found {
        Ok(t) => Ok(Some(t)),
        Err(_) if s.targets.is_empty() && !s.no_link_check && link_problem(link).is_some() => {
            Ok(None)
        }
        Err(f) => Err(f),
    }
}

/// The first step of the judgement: ADDRESS as found on INTERFACE (`present`), the targets
/// ([`judge_targets`]) and the link. Without the address the resource is not active here,
/// whatever else this node lacks (a target problem is then "not running" too: a Pacemaker
/// probe answers 7); with it, a duplicate is the verdict, no targets with the link down is
/// "link down", and otherwise the targets are probed.
pub fn judge_first(
    present: Option<&Address>,
    targets: Result<Option<Vec<Target>>, Failure>,
    link: &Link,
) -> Result<First, Failure> {
    let targets = match targets {
        Err(f) if present.is_none() => return Err(f.not_running()),
        t => t?,
    };
    Ok(match (present, targets) {
        (None, _) => First::Decided(Verdict::AddressMissing),
        (Some(a), _) if a.dad_failed() => First::Decided(Verdict::DuplicateAddress),
        (_, None) => First::Decided(Verdict::Failing {
            problem: Problem::LinkDown(link_problem(link).unwrap_or_default()),
            persisted: None,
            cut_short: false,
        }),
        (_, Some(t)) => First::Probe(t),
    })
}

/// One round's link check: the problem, unless the link is up or IP_NOLINKCHECK=1.
pub fn judge_link(s: &Settings, link: &Link) -> Option<Problem> {
    if s.no_link_check {
        return None;
    }
    link_problem(link).map(Problem::LinkDown)
}

/// One round's probe: any target answering passes; no answer (or a probe that could not be
/// sent at all, `Err`) fails, saying whom it asked and what sending failed with.
pub fn judge_answers(
    s: &Settings,
    targets: &[Target],
    probed: Result<&[Probed], String>,
) -> Round<Problem> {
    match probed {
        Ok(results) if results.iter().any(|r| r.answer.is_some()) => Round::Pass,
        Ok(results) => Round::Fail(Problem::NoAnswer(no_answer_detail(s, targets, results))),
        Err(e) => Round::Fail(Problem::NoAnswer(format!("probing failed: {e}"))),
    }
}

/// The verdict after the rounds (the grace evaluator's conclusion).
pub fn judge_rounds(e: Evaluation<Problem>) -> Verdict {
    match e {
        Evaluation::Healthy { failed_rounds } => Verdict::Healthy { failed_rounds },
        Evaluation::Failed {
            last,
            persisted,
            cut_short,
            ..
        } => Verdict::Failing {
            problem: last,
            persisted: Some(persisted),
            cut_short,
        },
    }
}

/// The one assessment of the resource, which quickCheck, recover and `status` share: the
/// address is on the interface (and not a duplicate), then, in rounds judged after GRACE,
/// the link is up and a target answers. Configuration problems found on the way are
/// failures (exit 2) rather than a verdict. It observes; the `judge_*` functions decide.
pub fn assess(
    s: &Settings,
    marker: &Marker,
    deadline: Instant,
    look: Look,
) -> Result<Health, Failure> {
    let mut live = resolve(s, marker, deadline)?;
    let present = live.ours(s).cloned();
    let targets = find_targets(s, &mut live, deadline);
    let (targets, verdict, probes) = match judge_first(present.as_ref(), targets, &live.link)? {
        First::Decided(v) => (Vec::new(), v, Vec::new()),
        First::Probe(t) => {
            let (v, probes) = reachability(s, &mut live, &t, deadline, look);
            (t, v, probes)
        }
    };
    if let Verdict::Healthy { failed_rounds } = verdict
        && failed_rounds > 0
    {
        log::warn!(
            "{} on {}: {failed_rounds} probe round(s) failed before targets answered again (a pause shorter than GRACE={}s, e.g. live migration)",
            s.address,
            s.interface,
            s.grace.as_secs()
        );
    }
    Ok(Health {
        address: s.address,
        interface: s.interface.clone(),
        link_checked: !s.no_link_check,
        targets,
        grace: s.grace,
        present,
        link: live.link,
        probes,
        verdict,
    })
}

pub fn link_problem(l: &Link) -> Option<String> {
    if !l.admin_up() {
        Some("administratively down".into())
    } else if !l.usable() {
        Some("no carrier".into())
    } else {
        None
    }
}

pub fn plan<'a>(s: &'a Settings, live: &Live, look: Look) -> Plan<'a> {
    Plan {
        ifname: &s.interface,
        ifindex: live.link.index,
        mac: live.link.mac,
        tries: s.ping_tries,
        interval: s.ping_time,
        stop_at_first: look == Look::FirstAnswer,
    }
}

pub fn describe_targets(targets: &[Target]) -> String {
    targets
        .iter()
        .map(|t| {
            let m = match (t.arp_from.is_some(), t.icmp) {
                (true, true) => "arp+icmp",
                (true, false) => "arp",
                _ => "icmp",
            };
            format!("{} by {m}", t.addr)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn no_answer_detail(s: &Settings, targets: &[Target], results: &[Probed]) -> String {
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.addr)))
        .collect();
    let mut d = format!(
        "asked {} in {} round(s) of {}s",
        describe_targets(targets),
        s.ping_tries,
        s.ping_time.as_secs()
    );
    if !errors.is_empty() {
        d += &format!("; send errors: {}", errors.join(", "));
    }
    d
}

/// One check round: link (unless IP_NOLINKCHECK), then any target answering; with what each
/// target did (nothing when the round did not probe). `refresh` re-reads the interface
/// first; the first round uses the state its caller just read.
fn round(
    s: &Settings,
    live: &mut Live,
    targets: &[Target],
    deadline: Instant,
    refresh: bool,
    look: Look,
) -> (Round<Problem>, Vec<Probed>) {
    if refresh && let Err(e) = live.refresh(s, deadline) {
        let why = format!("cannot read its state: {e}");
        return (Round::Fail(Problem::LinkDown(why)), Vec::new());
    }
    if let Some(p) = judge_link(s, &live.link) {
        return (Round::Fail(p), Vec::new());
    }
    match probe::probe(&plan(s, live, look), targets, deadline) {
        Ok(results) => {
            if let Some((r, a)) = results.iter().find_map(|r| r.answer.map(|a| (r, a))) {
                log::debug!("{} answered by {} in {:?}", r.addr, a.method.name(), a.rtt);
            }
            (judge_answers(s, targets, Ok(&results)), results)
        }
        Err(e) => (judge_answers(s, targets, Err(e.to_string())), Vec::new()),
    }
}

/// Link and reachability, judged after GRACE, with the last round's probe results. `live`
/// must be fresh (its callers have just read it): only the rounds after the first read the
/// interface again.
fn reachability(
    s: &Settings,
    live: &mut Live,
    targets: &[Target],
    deadline: Instant,
    look: Look,
) -> (Verdict, Vec<Probed>) {
    let mut first = true;
    let mut last = Vec::new();
    let e = grace::evaluate(&SystemClock, s.grace, deadline, s.ping_time, |d| {
        let (r, probes) = round(s, live, targets, d, !std::mem::take(&mut first), look);
        last = probes;
        r
    });
    (judge_rounds(e), last)
}

/// The targets to probe ([`judge_targets`] on what the system shows).
pub fn find_targets(
    s: &Settings,
    live: &mut Live,
    deadline: Instant,
) -> Result<Option<Vec<Target>>, Failure> {
    let found = live.targets(s, &s.targets, s.probe, deadline);
    judge_targets(s, found, &live.link)
}

/// [`find_targets`], with "link down" as a failure.
pub fn targets_or_link_down(
    s: &Settings,
    live: &mut Live,
    deadline: Instant,
) -> Result<Vec<Target>, Failure> {
    find_targets(s, live, deadline)?.ok_or_else(|| {
        let why = link_problem(&live.link).unwrap_or_default();
        Failure::failed(Problem::LinkDown(why).message(&s.interface))
    })
}

/// The interface, its addresses and the targets' setting checked against the system, and
/// ADDRESS refused when it is this node's own.
pub fn resolve(s: &Settings, marker: &Marker, deadline: Instant) -> Result<Live, Failure> {
    let live = Live::resolve(s, deadline)?;
    live.check_not_own_address(s, marker)?;
    Ok(live)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::path::Path;

    use ip_monitor::probe::{Answer, Method};
    use lkh_common::{Config, Exit, Hint};

    use super::*;

    const UP: u32 = 0x1 | 0x10000; // IFF_UP | IFF_LOWER_UP

    /// What looking for targets gave; what [`judge_targets`] made of it; one probe round.
    type Found = Result<Vec<Target>, Failure>;
    type Targets = Result<Option<Vec<Target>>, Failure>;
    type Answers<'a> = Result<&'a [Probed], String>;

    fn settings(extra: &[(&str, &str)]) -> Settings {
        let mut c = Config::defaults(crate::SPEC.keys);
        for (k, v) in [("ADDRESS", "192.0.2.10/24"), ("INTERFACE", "eth0")]
            .iter()
            .chain(extra)
        {
            c.set(crate::SPEC.keys, k, v).unwrap();
        }
        Settings::from_config(&c, Path::new("/etc/lkhelpers/vip.conf"), true).unwrap()
    }

    fn link(flags: u32, carrier: Option<bool>) -> Link {
        Link {
            index: 2,
            name: "eth0".into(),
            flags,
            mac: Some([2, 0, 0, 0, 0, 1]),
            oper_state: None,
            carrier,
            mtu: Some(1500),
        }
    }

    fn address(flags: u32) -> Address {
        Address {
            ifindex: 2,
            cidr: "192.0.2.10/24".parse().unwrap(),
            flags,
            scope: 0,
            label: None,
        }
    }

    fn gateway() -> Vec<Target> {
        vec![Target {
            addr: "192.0.2.1".parse().unwrap(),
            arp_from: None,
            icmp: true,
        }]
    }

    /// "TARGETS is not set and there is no default gateway via eth0": this node's gap.
    fn no_gateway() -> Failure {
        Failure::usage("TARGETS is not set and there is no default gateway via eth0").missing_here()
    }

    #[test]
    fn no_targets_with_the_link_down_is_the_link_being_down() {
        let down = link(0x1, Some(false));
        let up = link(UP, Some(true));
        let configured = settings(&[("TARGETS", "192.0.2.1")]);
        let unchecked = settings(&[("IP_NOLINKCHECK", "1")]);
        let plain = settings(&[]);
        // (settings, what looking for targets gave, link, want: Ok(Some)/Ok(None)/Err)
        let cases: Vec<(&str, &Settings, Found, &Link, &str)> = vec![
            ("found", &plain, Ok(gateway()), &up, "some"),
            ("found, link down", &plain, Ok(gateway()), &down, "some"),
            (
                "no gateway, link down",
                &plain,
                Err(no_gateway()),
                &down,
                "none",
            ),
            (
                "no gateway, link up",
                &plain,
                Err(no_gateway()),
                &up,
                "error",
            ),
            (
                "bad TARGETS, link down",
                &configured,
                Err(no_gateway()),
                &down,
                "error",
            ),
            (
                "no gateway, link down, IP_NOLINKCHECK",
                &unchecked,
                Err(no_gateway()),
                &down,
                "error",
            ),
        ];
        for (what, s, found, l, want) in cases {
            let got = match judge_targets(s, found, l) {
                Ok(Some(t)) => {
                    assert_eq!(t, gateway(), "{what}");
                    "some"
                }
                Ok(None) => "none",
                Err(f) => {
                    assert_eq!((f.exit, f.hint), (Exit::Usage, Hint::MissingHere), "{what}");
                    "error"
                }
            };
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn the_address_comes_first_then_the_targets() {
        let up = link(UP, Some(true));
        let down = link(0x1, Some(false));
        let present = address(0x80);
        let dad_failed = address(0x80 | 0x08);
        let link_down = Verdict::Failing {
            problem: Problem::LinkDown("no carrier".into()),
            persisted: None,
            cut_short: false,
        };
        // (case, present, targets, link, want)
        type Want = Result<First, (Exit, Hint)>;
        let cases: Vec<(&str, Option<&Address>, Targets, &Link, Want)> = vec![
            (
                "address missing",
                None,
                Ok(Some(gateway())),
                &up,
                Ok(First::Decided(Verdict::AddressMissing)),
            ),
            (
                "address missing, link down",
                None,
                Ok(None),
                &down,
                Ok(First::Decided(Verdict::AddressMissing)),
            ),
            // issue 27: a probe on a node without a default gateway is "not running", never
            // a configuration error
            (
                "address missing, no gateway",
                None,
                Err(no_gateway()),
                &up,
                Err((Exit::Usage, Hint::NotRunning)),
            ),
            (
                "address present, no gateway",
                Some(&present),
                Err(no_gateway()),
                &up,
                Err((Exit::Usage, Hint::MissingHere)),
            ),
            (
                "duplicate",
                Some(&dad_failed),
                Ok(Some(gateway())),
                &up,
                Ok(First::Decided(Verdict::DuplicateAddress)),
            ),
            (
                "link down, its gateway gone with it",
                Some(&present),
                Ok(None),
                &down,
                Ok(First::Decided(link_down)),
            ),
            (
                "probe",
                Some(&present),
                Ok(Some(gateway())),
                &up,
                Ok(First::Probe(gateway())),
            ),
        ];
        for (what, present, targets, l, want) in cases {
            let got = judge_first(present, targets, l).map_err(|f| (f.exit, f.hint));
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn a_round_checks_the_link_then_any_answer() {
        let s = settings(&[]);
        let unchecked = settings(&[("IP_NOLINKCHECK", "1")]);
        let cases = [
            ("up", &s, link(UP, Some(true)), None),
            ("up, carrier unknown", &s, link(UP, None), None),
            (
                "administratively down",
                &s,
                link(0x10000, None),
                Some("administratively down"),
            ),
            ("no LOWER_UP", &s, link(0x1, None), Some("no carrier")),
            (
                "carrier lost",
                &s,
                link(UP, Some(false)),
                Some("no carrier"),
            ),
            (
                "down, IP_NOLINKCHECK",
                &unchecked,
                link(0x1, Some(false)),
                None,
            ),
        ];
        for (what, s, l, want) in cases {
            let want = want.map(|w| Problem::LinkDown(w.into()));
            assert_eq!(judge_link(s, &l), want, "{what}");
        }

        let gw: IpAddr = "192.0.2.1".parse().unwrap();
        let answered = Probed {
            addr: gw,
            answer: Some(Answer {
                method: Method::Arp,
                rtt: Duration::from_micros(250),
                mac: Some([2, 0, 0, 0, 0, 9]),
            }),
            error: None,
        };
        let silent = Probed {
            addr: gw,
            answer: None,
            error: None,
        };
        let unreachable = Probed {
            addr: gw,
            answer: None,
            error: Some("Network is unreachable".into()),
        };
        let asked = "asked 192.0.2.1 by icmp in 3 round(s) of 1s";
        let two = [silent.clone(), answered.clone()];
        let cases: Vec<(&str, Answers, Round<Problem>)> = vec![
            ("answered", Ok(std::slice::from_ref(&answered)), Round::Pass),
            ("one of two answered", Ok(&two), Round::Pass),
            (
                "silence",
                Ok(std::slice::from_ref(&silent)),
                Round::Fail(Problem::NoAnswer(asked.into())),
            ),
            (
                "send error",
                Ok(std::slice::from_ref(&unreachable)),
                Round::Fail(Problem::NoAnswer(format!(
                    "{asked}; send errors: 192.0.2.1: Network is unreachable"
                ))),
            ),
            (
                "no socket",
                Err("Operation not permitted".into()),
                Round::Fail(Problem::NoAnswer(
                    "probing failed: Operation not permitted".into(),
                )),
            ),
        ];
        for (what, probed, want) in cases {
            assert_eq!(judge_answers(&s, &gateway(), probed), want, "{what}");
        }
    }

    #[test]
    fn rounds_become_the_verdict() {
        assert_eq!(
            judge_rounds(Evaluation::Healthy { failed_rounds: 2 }),
            Verdict::Healthy { failed_rounds: 2 }
        );
        assert_eq!(
            judge_rounds(Evaluation::Failed {
                last: Problem::NoAnswer("asked".into()),
                rounds: 4,
                persisted: Duration::from_millis(3100),
                cut_short: false,
            }),
            Verdict::Failing {
                problem: Problem::NoAnswer("asked".into()),
                persisted: Some(Duration::from_millis(3100)),
                cut_short: false,
            }
        );
    }
}
