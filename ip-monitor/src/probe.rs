//! Reachability probing: ask several targets at once, by ARP and/or ICMP echo, in `tries`
//! rounds `interval` apart, all within one deadline.
//!
//! All requests of a round go out together and one `poll()` waits on every socket, so the
//! worst case is `tries × interval` no matter how many targets there are.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use crate::{Error, MAX_DRAIN, arp, expired, icmp, remaining, sock};

/// How a target answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// An ARP reply.
    Arp,
    /// An ICMP or ICMPv6 echo reply.
    Icmp,
}

impl Method {
    /// `"arp"` or `"icmp"`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Arp => "arp",
            Method::Icmp => "icmp",
        }
    }
}

/// One target and the methods to try on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The address to probe.
    pub addr: IpAddr,
    /// Send ARP requests from this sender address (IPv4 on-link targets only): an address of
    /// ours on the target's subnet, or 0.0.0.0 when we have none yet (the target then
    /// answers as to an RFC 5227 probe).
    pub arp_from: Option<Ipv4Addr>,
    /// Send ICMP echo requests.
    pub icmp: bool,
}

/// The first answer from a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// How it answered.
    pub method: Method,
    /// Time from the latest request of that method to the answer.
    pub rtt: Duration,
    /// The MAC it answered from (ARP only).
    pub mac: Option<[u8; 6]>,
}

/// What one target did in a probe: its first answer, or the last error sending to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    /// The target.
    pub addr: IpAddr,
    /// Its first answer, if any.
    pub answer: Option<Answer>,
    /// The last local error sending to it (e.g. "Network is unreachable"), if any.
    pub error: Option<String>,
}

/// Where and how to probe.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// Interface name (ICMP sockets are bound to it).
    pub ifname: &'a str,
    /// Interface index (the ARP socket is bound to it).
    pub ifindex: u32,
    /// Interface MAC, needed for ARP.
    pub mac: Option<[u8; 6]>,
    /// Number of rounds.
    pub tries: u32,
    /// Time between rounds; after the last round we wait this long for answers.
    pub interval: Duration,
    /// Return as soon as any target answers (quickCheck) rather than waiting for all (status).
    pub stop_at_first: bool,
}

/// How long ICMP may answer alone before ARP is asked too (see [`probe`]).
const ICMP_HEAD_START: Duration = Duration::from_millis(50);

struct Sent {
    arp: Option<Instant>,
    icmp: Option<Instant>,
}

/// Probe `targets` according to `plan`, never past `deadline`.
pub fn probe(plan: &Plan<'_>, targets: &[Target], deadline: Instant) -> Result<Vec<Probed>, Error> {
    let mut out: Vec<Probed> = targets
        .iter()
        .map(|t| Probed {
            addr: t.addr,
            answer: None,
            error: None,
        })
        .collect();
    let mut sent: Vec<Sent> = targets
        .iter()
        .map(|_| Sent {
            arp: None,
            icmp: None,
        })
        .collect();

    let wants_arp = plan.mac.is_some()
        && targets
            .iter()
            .any(|t| t.arp_from.is_some() && t.addr.is_ipv4());
    let icmp4 = if targets.iter().any(|t| t.icmp && t.addr.is_ipv4()) {
        Some(icmp::Socket::open(false, Some(plan.ifname))?)
    } else {
        None
    };
    let icmp6 = if targets.iter().any(|t| t.icmp && t.addr.is_ipv6()) {
        Some(icmp::Socket::open(true, Some(plan.ifname))?)
    } else {
        None
    };
    // Opening and closing an AF_PACKET socket each wait for an RCU grace period (~10 ms).
    // When any answer will do and ICMP is also asked, give ICMP a head start and open the
    // ARP socket only if no echo reply came back by then.
    let head_start = plan.stop_at_first && wants_arp && (icmp4.is_some() || icmp6.is_some());
    let mut arp_sock: Option<arp::Socket> = None;
    let open_arp = || -> Result<Option<arp::Socket>, Error> {
        match plan.mac {
            Some(mac) => Ok(Some(arp::Socket::open(plan.ifindex, mac)?)),
            None => Ok(None),
        }
    };
    if wants_arp && !head_start {
        arp_sock = open_arp()?;
    }
    let ident = (std::process::id() as u16) ^ 0x4c4b; // "LK"
    let seq_base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u16)
        .unwrap_or(0);

    let start = Instant::now();
    let tries = plan.tries.max(1);
    let end = deadline.min(start + plan.interval * tries);
    let arp_after = start + ICMP_HEAD_START.min(plan.interval);
    let mut round = 0;
    loop {
        let mut send_arp = false;
        if wants_arp && arp_sock.is_none() && expired(arp_after) {
            arp_sock = open_arp()?;
            send_arp = true; // catch up with the round already under way
        }
        let new_round = round < tries && Instant::now() >= start + plan.interval * round;
        if new_round || send_arp {
            let seq = seq_base.wrapping_add(round as u16);
            for (i, t) in targets.iter().enumerate() {
                if out[i].answer.is_some() {
                    continue;
                }
                if let (Some(sock), Some(sender), IpAddr::V4(tip)) =
                    (arp_sock.as_ref(), t.arp_from, t.addr)
                {
                    match sock.send(
                        &arp::Packet::request(sock.mac(), sender, tip),
                        arp::BROADCAST,
                    ) {
                        Ok(()) => sent[i].arp = Some(Instant::now()),
                        Err(e) => out[i].error = Some(e.to_string()),
                    }
                }
                let isock = if t.addr.is_ipv4() {
                    icmp4.as_ref()
                } else {
                    icmp6.as_ref()
                };
                if let (true, true, Some(sock)) = (new_round, t.icmp, isock) {
                    match sock.send_echo(t.addr, ident, seq) {
                        Ok(()) => sent[i].icmp = Some(Instant::now()),
                        Err(e) => out[i].error = Some(e.to_string()),
                    }
                }
            }
            if new_round {
                round += 1;
            }
        }
        let mut wake = if round < tries {
            (start + plan.interval * round).min(end)
        } else {
            end
        };
        if wants_arp && arp_sock.is_none() {
            wake = wake.min(arp_after);
        }
        sock::poll_readable(
            [
                arp_sock.as_ref().map(|s| s.fd()),
                icmp4.as_ref().map(|s| s.fd()),
                icmp6.as_ref().map(|s| s.fd()),
            ],
            remaining(wake),
        )
        .map_err(|e| Error::io("wait for probe replies", e))?;

        if let Some(sock) = arp_sock.as_ref() {
            for _ in 0..MAX_DRAIN {
                let Some((pkt, from)) = sock.try_recv()? else {
                    break;
                };
                if pkt.op != arp::OP_REPLY || pkt.sha == sock.mac() {
                    continue;
                }
                for (i, t) in targets.iter().enumerate() {
                    if t.addr == IpAddr::V4(pkt.spa)
                        && t.arp_from == Some(pkt.tpa)
                        && out[i].answer.is_none()
                        && let Some(at) = sent[i].arp
                    {
                        out[i].answer = Some(Answer {
                            method: Method::Arp,
                            rtt: at.elapsed(),
                            mac: Some(if from == [0; 6] { pkt.sha } else { from }),
                        });
                    }
                }
            }
        }
        for sock in [icmp4.as_ref(), icmp6.as_ref()].into_iter().flatten() {
            for _ in 0..MAX_DRAIN {
                let Some((from, id, seq)) = sock.try_recv()? else {
                    break;
                };
                let offset = seq.wrapping_sub(seq_base);
                if id != ident || u32::from(offset) >= round {
                    continue;
                }
                for (i, t) in targets.iter().enumerate() {
                    if t.addr == from
                        && out[i].answer.is_none()
                        && let Some(at) = sent[i].icmp
                    {
                        out[i].answer = Some(Answer {
                            method: Method::Icmp,
                            rtt: at.elapsed(),
                            mac: None,
                        });
                    }
                }
            }
        }

        let answered = out.iter().filter(|o| o.answer.is_some()).count();
        if answered == out.len() || (plan.stop_at_first && answered > 0) || expired(end) {
            return Ok(out);
        }
    }
}
