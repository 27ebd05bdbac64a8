//! The challenger's side of owner defense ([`challenge`]): a restore that finds another node
//! holding a disk does not take it at once. The holder may be dead (then the disk must move)
//! or alive and merely unheard (a cut cluster network: then it must keep the disk), and only
//! the holder can tell. So the restore registers its key and waits the challenge window; a
//! live holder's defender (`watch`, [`super::defend`]) sees the foreign registration within
//! one defense interval and removes it (a PREEMPT of that key alone: the holder's own
//! reservation and I/O are untouched). A registration that survived the window means nobody
//! defended: restore goes on with its compare-and-swap against the holder it observed.
//!
//! Owner and challenger can never both win: the challenger's PREEMPT comes from the nexus it
//! registered, so once the defender removed that registration the PREEMPT gets RESERVATION
//! CONFLICT; and once the challenger's PREEMPT removed the holder's key, the holder's own
//! PREEMPT conflicts, and a holder never registers again on its own (see [`super::defend`]).
//! A holder that leaves meanwhile (its remove: a switchover) ends the wait at once.

use std::time::{Duration, Instant};

use lkh_common::Failure;
use log::info;

use super::classify::all_reg;
use super::prim::{dev, register_all};
use super::restore::Start;
use crate::pr::{Disk, Nexus};
use crate::settings::fmt_key;

/// How often a challenger reads the keys while it waits.
const POLL: Duration = Duration::from_millis(250);

/// The keys that held the disk when restore observed it, other than this node's: under a
/// single-holder or registrants-only type the reservation's key, under an all-registrants
/// type every registrant.
pub(super) fn holders(start: &Start, key: u64) -> Vec<u64> {
    match start.res {
        Some(r) if all_reg(&r) => start.keys.iter().copied().filter(|k| *k != key).collect(),
        Some(r) if r.key != key => vec![r.key],
        _ => Vec::new(),
    }
}

/// Why the challenge was lost: the holder removed this node's registration.
fn defended(name: &str, holders: &[u64], waited: Duration) -> Failure {
    let h: Vec<String> = holders.iter().map(|k| fmt_key(*k)).collect();
    Failure::fenced(format!(
        "{name}: the holder ({}) defended the disk: it removed this node's registration {:.1} s into the challenge window, so it is alive and keeps the disk; this node did not take it and must not write: let LifeKeeper keep the resource where it is (a cut cluster network makes each node think the other is dead)",
        h.join(", "),
        waited.as_secs_f64()
    ))
}

/// Challenges the holders of the LUs `which` (their observations in `starts`): registers this
/// node's key on every path of each, then waits up to `window` while reading the keys every
/// quarter of a second. Returns how many paths of each LU were registered when no holder
/// defended (every registration still there at the end of the window, or its holder gone:
/// the restore goes on); a removed registration is an exit-3 failure (the caller rolls back
/// every disk it registered). Nothing but this node's own registrations is changed.
pub(super) fn challenge<D: Disk>(
    lus: &mut [D],
    starts: &[Start],
    which: &[usize],
    key: u64,
    window: Duration,
    deadline: Instant,
) -> Result<Vec<(usize, usize)>, Failure> {
    let mut registered = Vec::new();
    for &i in which {
        registered.push((i, register_all(&mut lus[i], key, deadline)?));
        let h: Vec<String> = holders(&starts[i], key)
            .iter()
            .map(|k| fmt_key(*k))
            .collect();
        info!(
            "{}: held by {}: challenging the holder: this node registered {} and waits up to {:.1} s for a live holder to remove it",
            dev(&lus[i]),
            h.join(", "),
            fmt_key(key),
            window.as_secs_f64()
        );
    }
    let began = Instant::now();
    let end = (began + window).min(deadline);
    let mut waiting: Vec<usize> = which.to_vec();
    loop {
        let mut still = Vec::new();
        for &i in &waiting {
            let lu = &mut lus[i];
            let keys = lu
                .any_path(|p| p.read_keys(deadline))
                .map_err(|e| super::outcome::failure(&e))?;
            let hs = holders(&starts[i], key);
            if !keys.keys.contains(&key) {
                return Err(defended(&dev(lu), &hs, began.elapsed()));
            }
            if hs.iter().any(|k| keys.keys.contains(k)) {
                still.push(i);
            } else {
                info!(
                    "{}: the holder left while this node waited (a switchover, or another node took it): the challenge ends",
                    dev(lu)
                );
            }
        }
        waiting = still;
        let now = Instant::now();
        if waiting.is_empty() || now >= end {
            break;
        }
        std::thread::sleep(POLL.min(end - now));
    }
    for &i in &waiting {
        info!(
            "{}: nobody defended the disk within {:.1} s: the holder is gone; taking over",
            dev(&lus[i]),
            began.elapsed().as_secs_f64()
        );
    }
    Ok(registered)
}
