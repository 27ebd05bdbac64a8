//! The four LifeKeeper actions for a virtual IP, and the one assessment of the resource
//! ([`assess`]) that quickCheck, recover and `status` share.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ip_monitor::grace::{self, Round, SystemClock};
use ip_monitor::netlink::{Addition, Address, Deletion, Link};
use ip_monitor::probe::{self, Plan, Probed, Target};
use ip_monitor::{Cidr, arp, fmt_mac, ndp};
use lkh_common::{Action, Exit, Failure, HookCtx, Outcome};

use crate::settings::{Live, Marker, Settings, nl_err};

/// Time between gratuitous ARPs / neighbour advertisements.
const ANNOUNCE_INTERVAL: Duration = Duration::from_millis(200);
/// RFC 5227 probes before adding the address, and how far apart.
const DAD_PROBES: u32 = 3;
const DAD_INTERVAL: Duration = Duration::from_millis(300);
/// Longest wait for the kernel's IPv6 duplicate address detection.
const DAD6_WAIT: Duration = Duration::from_secs(5);

pub fn hook(ctx: &HookCtx) -> Outcome {
    let s = Settings::from_ctx(ctx)?;
    let deadline = ctx.deadline.instant();
    let marker = Marker::new(&ctx.tag);
    match ctx.action {
        Action::Restore => restore(&s, &marker, deadline),
        Action::Remove => remove(&s, &marker, deadline),
        Action::QuickCheck => {
            assess(&s, &marker, check_deadline(ctx, &s), Look::FirstAnswer)?.outcome()
        }
        Action::Recover => recover(&s, &marker, deadline),
    }
}

/// The earlier of `deadline` and `d` from now.
fn within(deadline: Instant, d: Duration) -> Instant {
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

impl Health {
    /// quickCheck's answer: the one-line summary, or the failure with its exit code.
    pub fn outcome(&self) -> Outcome {
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

    /// The exit code quickCheck returns for this look (taken from [`Health::outcome`]).
    pub fn exit(&self) -> Exit {
        self.outcome().map_or_else(|f| f.exit, |_| Exit::Ok)
    }

    /// The verdict in a few words.
    pub fn verdict_name(&self) -> &'static str {
        match &self.verdict {
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
        }
    }
}

/// The one assessment of the resource, which quickCheck, recover and `status` share: the
/// address is on the interface (and not a duplicate), then, in rounds judged after GRACE,
/// the link is up and a target answers. Configuration problems found on the way are
/// failures (exit 2) rather than a verdict.
pub fn assess(
    s: &Settings,
    marker: &Marker,
    deadline: Instant,
    look: Look,
) -> Result<Health, Failure> {
    let mut live = resolve(s, marker, deadline)?;
    let present = live.ours(s).cloned();
    let targets = match find_targets(s, &mut live, deadline) {
        Err(f) if present.is_none() => return Err(f.not_running()),
        r => r?,
    };
    let (verdict, probes) = match (&present, &targets) {
        (None, _) => (Verdict::AddressMissing, Vec::new()),
        (Some(a), _) if a.dad_failed() => (Verdict::DuplicateAddress, Vec::new()),
        (_, None) => {
            let why = link_problem(&live.link).unwrap_or_default();
            let problem = Problem::LinkDown(why);
            let v = Verdict::Failing {
                problem,
                persisted: None,
                cut_short: false,
            };
            (v, Vec::new())
        }
        (_, Some(t)) => reachability(s, &mut live, t, deadline, look),
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
        targets: targets.unwrap_or_default(),
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

fn no_answer_detail(s: &Settings, targets: &[Target], results: &[Probed]) -> String {
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
    if !s.no_link_check
        && let Some(why) = link_problem(&live.link)
    {
        return (Round::Fail(Problem::LinkDown(why)), Vec::new());
    }
    match probe::probe(&plan(s, live, look), targets, deadline) {
        Ok(results) => {
            let r = match results.iter().find_map(|r| r.answer.map(|a| (r, a))) {
                Some((r, a)) => {
                    log::debug!("{} answered by {} in {:?}", r.addr, a.method.name(), a.rtt);
                    Round::Pass
                }
                None => Round::Fail(Problem::NoAnswer(no_answer_detail(s, targets, &results))),
            };
            (r, results)
        }
        Err(e) => (
            Round::Fail(Problem::NoAnswer(format!("probing failed: {e}"))),
            Vec::new(),
        ),
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
    let verdict = grace::evaluate(&SystemClock, s.grace, deadline, s.ping_time, |d| {
        let (r, probes) = round(s, live, targets, d, !std::mem::take(&mut first), look);
        last = probes;
        r
    });
    let verdict = match verdict {
        grace::Evaluation::Healthy { failed_rounds } => Verdict::Healthy { failed_rounds },
        grace::Evaluation::Failed {
            last,
            persisted,
            cut_short,
            ..
        } => Verdict::Failing {
            problem: last,
            persisted: Some(persisted),
            cut_short,
        },
    };
    (verdict, last)
}

/// The targets to probe; `None` when the link is down and the default gateway is gone with
/// it (taking an interface down deletes its routes: that is the link being down, not bad input).
fn find_targets(
    s: &Settings,
    live: &mut Live,
    deadline: Instant,
) -> Result<Option<Vec<Target>>, Failure> {
    match live.targets(s, &s.targets, s.probe, deadline) {
        Ok(t) => Ok(Some(t)),
        Err(_)
            if s.targets.is_empty() && !s.no_link_check && link_problem(&live.link).is_some() =>
        {
            Ok(None)
        }
        Err(f) => Err(f),
    }
}

/// [`find_targets`], with "link down" as a failure.
fn targets_or_link_down(
    s: &Settings,
    live: &mut Live,
    deadline: Instant,
) -> Result<Vec<Target>, Failure> {
    find_targets(s, live, deadline)?.ok_or_else(|| {
        let why = link_problem(&live.link).unwrap_or_default();
        Failure::failed(Problem::LinkDown(why).message(&s.interface))
    })
}

fn resolve(s: &Settings, marker: &Marker, deadline: Instant) -> Result<Live, Failure> {
    let live = Live::resolve(s, deadline)?;
    live.check_not_own_address(s, marker)?;
    Ok(live)
}

/// Refuse when another host answers for ADDRESS (RFC 5227 probe), naming its MAC.
fn check_unique(s: &Settings, live: &Live, deadline: Instant) -> Result<(), Failure> {
    let Some(mac) = live.link.mac else {
        log::warn!(
            "{} has no Ethernet address: skipping the duplicate-address check",
            s.interface
        );
        return Ok(());
    };
    let window = within(deadline, DAD_INTERVAL * DAD_PROBES);
    let found = match s.address.addr {
        IpAddr::V4(v4) => arp::Socket::open(live.link.index, mac)
            .and_then(|sock| arp::detect_conflict(&sock, v4, DAD_PROBES, DAD_INTERVAL, window)),
        // IPv6: our own DAD probe names the owner; the kernel's DAD still runs at add.
        IpAddr::V6(v6) => {
            ndp::detect_conflict(live.link.index, mac, v6, DAD_PROBES, DAD_INTERVAL, window)
        }
    };
    match found {
        Ok(None) => Ok(()),
        Ok(Some(other)) => Err(Failure::failed(format!(
            "{} is already in use on the network by the host with MAC {}: refusing to add it on {} (it would be a duplicate); find that host (switch MAC table, its 'ip addr') and free the address, or choose another ADDRESS",
            s.address.addr,
            fmt_mac(&other),
            s.interface
        ))),
        Err(e) => Err(Failure::failed(format!(
            "{}: cannot check that {} is unused: {e}",
            s.interface, s.address.addr
        ))),
    }
}

/// Wait for IPv6 DAD to finish; on failure delete the address again (and the marker with it).
fn await_dad6(
    s: &Settings,
    marker: &Marker,
    live: &mut Live,
    deadline: Instant,
) -> Result<(), Failure> {
    let until = within(deadline, DAD6_WAIT);
    loop {
        live.refresh(s, deadline)
            .map_err(|e| nl_err("read the new address", e))?;
        match live.ours(s) {
            Some(a) if a.dad_failed() => {
                let cidr = a.cidr;
                let undone = match live.nl.del_address(live.link.index, &cidr, deadline) {
                    Ok(_) => {
                        marker.clear();
                        "deleted it again".to_string()
                    }
                    Err(e) => format!("could not delete it again ({e}): run remove"),
                };
                return Err(Failure::failed(format!(
                    "{} is already in use on the network (IPv6 duplicate address detection failed on {}): refusing it and {undone}; find the other host and free the address",
                    s.address, s.interface
                )));
            }
            Some(a) if a.tentative() => {}
            Some(_) => return Ok(()),
            None => {
                return Err(Failure::failed(format!(
                    "{} vanished from {} right after being added: is a network manager removing it?",
                    s.address, s.interface
                )));
            }
        }
        if Instant::now() >= until {
            return Err(Failure::failed(format!(
                "{} on {}: duplicate address detection did not finish within {}s: check the link, or set NOIPUNIQUE=1",
                s.address,
                s.interface,
                DAD6_WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Announce ADDRESS (gratuitous ARP / unsolicited NA) unless on Azure, where it moves nothing.
fn announce(s: &Settings, live: &Live, deadline: Instant, azure: Option<bool>) -> String {
    if s.garp_count == 0 {
        return "no announcement (GARP_COUNT=0)".into();
    }
    if azure == Some(true) {
        log::warn!(
            "this node runs on Azure, where gratuitous ARP does not move an address: an Azure internal load balancer with a health probe must send {}'s traffic to the active node",
            s.address.addr
        );
        return "not announced: Azure (an internal load balancer is required)".into();
    }
    let Some(mac) = live.link.mac else {
        return format!("not announced: {} has no Ethernet address", s.interface);
    };
    let sent = match s.address.addr {
        IpAddr::V4(v4) => arp::Socket::open(live.link.index, mac)
            .and_then(|sock| arp::announce(&sock, v4, s.garp_count, ANNOUNCE_INTERVAL, deadline)),
        IpAddr::V6(v6) => ndp::announce(
            &s.interface,
            live.link.index,
            v6,
            mac,
            s.garp_count,
            ANNOUNCE_INTERVAL,
            deadline,
        ),
    };
    let kind = if s.is_v6() {
        "unsolicited neighbour advertisements"
    } else {
        "gratuitous ARPs"
    };
    match sent {
        Ok(n) => format!("announced with {n} {kind}"),
        Err(e) => {
            log::warn!(
                "{}: could not announce {}: {e}; clients may reach it only after their ARP caches expire",
                s.interface,
                s.address.addr
            );
            format!("announcement failed: {e}")
        }
    }
}

/// Check, add, announce, verify. Shared by restore and recover.
fn bring_up(
    s: &Settings,
    marker: &Marker,
    live: &mut Live,
    deadline: Instant,
) -> Result<String, Failure> {
    // On Azure gratuitous ARP moves nothing (an internal load balancer must follow the active
    // node); only lkh-platform's confident Azure verdict counts. Its detection may probe the
    // network for up to a second: run it alongside the duplicate check instead of after it.
    let detector = (s.garp_count > 0).then(|| std::thread::spawn(lkh_platform::is_azure));
    let azure = move || detector.and_then(|h| h.join().ok()).flatten();
    if !s.no_link_check
        && let Some(why) = link_problem(&live.link)
    {
        return Err(Failure::failed(format!(
            "{}: link down ({why}): cannot bring up {} on it; check the virtual NIC's connection, or set IP_NOLINKCHECK=1 if it never reports its link",
            s.interface, s.address
        )));
    }
    if live.ours(s).is_some() {
        marker.set(s);
        let a = announce(s, live, deadline, azure());
        return Ok(format!("{} is already on {}; {a}", s.address, s.interface));
    }
    if !s.no_ip_unique {
        check_unique(s, live, deadline)?;
    }
    let nodad = s.no_ip_unique;
    match live
        .nl
        .add_address(live.link.index, &s.address, nodad, deadline)
    {
        Ok(Addition::Added) => log::info!("added {} to {}", s.address, s.interface),
        Ok(Addition::AlreadyPresent) => {
            log::info!("{} appeared on {} meanwhile", s.address, s.interface)
        }
        Err(e) => {
            return Err(Failure::failed(format!(
                "cannot add {} to {}: {e}: check the address and the interface",
                s.address, s.interface
            )));
        }
    }
    marker.set(s);
    if s.is_v6() && !nodad {
        await_dad6(s, marker, live, deadline)?;
    }
    let a = announce(s, live, deadline, azure());
    live.refresh(s, deadline)
        .map_err(|e| nl_err("verify the address", e))?;
    if live.ours(s).is_none() {
        return Err(Failure::failed(format!(
            "{} vanished from {} right after being added: is a network manager (NetworkManager, systemd-networkd) removing it?",
            s.address, s.interface
        )));
    }
    Ok(format!("added {} to {}; {a}", s.address, s.interface))
}

fn restore(s: &Settings, marker: &Marker, deadline: Instant) -> Outcome {
    let mut live = resolve(s, marker, deadline)?;
    // Validate TARGETS now so a bad configuration fails restore, not the first check.
    targets_or_link_down(s, &mut live, deadline)?;
    bring_up(s, marker, &mut live, deadline)
}

fn recover(s: &Settings, marker: &Marker, deadline: Instant) -> Outcome {
    let mut live = resolve(s, marker, deadline)?;
    // bad TARGETS fail before anything is added
    targets_or_link_down(s, &mut live, deadline)?;
    let readded = if live.ours(s).is_none() {
        log::warn!(
            "{} is not on {}: address missing: adding it again",
            s.address,
            s.interface
        );
        Some(bring_up(s, marker, &mut live, deadline)?)
    } else {
        None
    };
    let health = assess(s, marker, deadline, Look::FirstAnswer)?.outcome()?;
    Ok(match readded {
        Some(r) => format!("{r}; {health}"),
        None => health,
    })
}

fn remove(s: &Settings, marker: &Marker, deadline: Instant) -> Outcome {
    let mut live = resolve(s, marker, deadline)?;
    // Check configured TARGETS like the other actions, but never look for a default
    // gateway here: routes may be gone while the address is taken away.
    if !s.targets.is_empty() {
        live.targets(s, &s.targets, s.probe, deadline)?;
    }
    let Some(ours) = live.ours(s).cloned() else {
        marker.clear();
        return Ok(format!(
            "{} is not on {}: nothing to remove",
            s.address, s.interface
        ));
    };
    if ours.cidr.prefix != s.address.prefix {
        log::warn!(
            "{} is on {} as /{} rather than /{}: removing it anyway",
            s.address.addr,
            s.interface,
            ours.cidr.prefix,
            s.address.prefix
        );
    }
    // Deleting a primary IPv4 address also deletes the secondaries of its subnet unless
    // promote_secondaries is set; note them so they can be put back.
    let others: Vec<_> = live
        .addrs
        .iter()
        .filter(|a| a.cidr.addr != s.address.addr)
        .cloned()
        .collect();
    match live.nl.del_address(live.link.index, &ours.cidr, deadline) {
        Ok(Deletion::Deleted) => log::info!("deleted {} from {}", ours.cidr, s.interface),
        Ok(Deletion::Absent) => log::info!("{} left {} meanwhile", ours.cidr, s.interface),
        Err(e) => {
            return Err(Failure::failed(format!(
                "cannot delete {} from {}: {e}",
                ours.cidr, s.interface
            )));
        }
    }
    live.refresh(s, deadline)
        .map_err(|e| nl_err("verify the removal", e))?;
    for lost in others
        .iter()
        .filter(|o| !live.addrs.iter().any(|a| a.cidr.addr == o.cidr.addr))
    {
        log::warn!(
            "the kernel dropped {} from {} together with {}: adding it back",
            lost.cidr,
            s.interface,
            s.address.addr
        );
        if let Err(e) = live
            .nl
            .add_address(live.link.index, &lost.cidr, true, deadline)
        {
            log::error!(
                "could not add {} back to {}: {e}: add it by hand",
                lost.cidr,
                s.interface
            );
        }
    }
    if live.ours(s).is_some() {
        return Err(Failure::failed(format!(
            "{} is still on {} after deleting it: is a network manager adding it back?",
            s.address, s.interface
        )));
    }
    marker.clear();
    Ok(format!("removed {} from {}", s.address, s.interface))
}
