//! The four LifeKeeper actions for a virtual IP. quickCheck is the one assessment
//! ([`crate::assess`]); recover re-adds a missing address and then assesses again.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ip_monitor::netlink::{Addition, Deletion};
use ip_monitor::{arp, fmt_mac, ndp};
use lkh_common::{Action, Assessment, Failure, HookCtx, Outcome};

use crate::assess::{
    Look, assess, check_deadline, link_problem, resolve, targets_or_link_down, within,
};
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
    // an interface that went away (a NIC removed from the VM) cannot carry the address: a
    // remove that failed for it would only get this node fenced, unless the address lives on
    // elsewhere on this node
    match Live::interface_gone(s, deadline)? {
        None => {}
        Some(None) => {
            marker.clear();
            return Ok(format!(
                "INTERFACE {} does not exist on this node and {} is on no interface: nothing to remove",
                s.interface, s.address
            ));
        }
        Some(Some(other)) => {
            return Err(Failure::failed(format!(
                "INTERFACE {} does not exist on this node, but {} is on {other}: not removed (it may be another resource's); take it off by hand if it is this one's",
                s.interface, s.address.addr
            )));
        }
    }
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
