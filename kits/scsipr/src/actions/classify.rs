//! What a reservation state means for this node: [`Held`] (ours, nobody holds, ours with
//! another type, or the LU lost its PR state) or [`Fence`] (another node took the disk: exit
//! 3). One classification ([`classify_state`]) serves the assessment, restore's final
//! judgement and every re-judging of quickCheck and recover; [`judge`] reads the state with PR
//! IN only and classifies it.
//!
//! An empty disk (no reservation, no registration) is judged with this node's memory of it
//! ([`Memory`], see [`super::records`]): a PR generation above the one this node saw last
//! means another initiator changed the disk since — it took the disk over and released it,
//! or cleared it — so this node lost it ([`Fence::TakenOver`]); at or below, the target lost
//! its PR state ([`Held::Lost`]). A disk this node already lost stays lost.
//!
//! Under an all-registrants type every registrant holds and the reservation's key is 0, so
//! holding is a matter of being registered ([`holds`]).

use std::time::Instant;

use lkh_common::Failure;
use sg_persist::{PrType, Reservation};

use super::prim::{describe, dev, read_keys, read_reservation};
use super::records::Memory;
use crate::pr::Disk;
use crate::settings::fmt_key;

/// Whether this node, with `key` (`registered` or not), holds `r`.
pub(super) fn holds(r: &Reservation, key: u64, registered: bool) -> bool {
    match r.pr_type() {
        Some(t) if t.all_registrants() => registered,
        _ => r.key == key,
    }
}

/// Whether `r` is of an all-registrants type (every registrant holds it).
pub(super) fn all_reg(r: &Reservation) -> bool {
    r.pr_type().is_some_and(|t| t.all_registrants())
}

/// The check shared by quickCheck, recover and watch: fenced / failed / ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// We hold it with the configured type.
    Ours,
    /// Nobody holds it; our key is registered.
    Free,
    /// We hold it with another type.
    WrongType(u8),
    /// No reservation and no registration at all, and no sign that another initiator changed
    /// the disk since this node's last look (its PR generation did not go up): the LU lost its
    /// PR state (a target restart without persist-through-power-loss, a backstore re-created).
    /// Not fenced: nobody else holds.
    Lost,
}

/// Why this node is fenced: another node took the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// Another key holds the reservation.
    OtherHolder(Reservation),
    /// Our key is no longer registered while other keys are (another node preempted it).
    KeyGone,
    /// The disk is empty, but another initiator changed it since this node's last look (its PR
    /// generation went from `was` up to `now`: a takeover and release, a CLEAR), or this node
    /// had already lost it (`was` is `None` then).
    TakenOver { was: Option<u32>, now: Option<u32> },
}

impl Fence {
    /// The exit-3 failure for device `name`.
    pub fn failure(&self, name: &str, key: u64) -> Failure {
        Failure::fenced(match self {
            Fence::OtherHolder(r) => format!(
                "{name}: the reservation is held by another node ({}), not by this node's key {}: this node is fenced and must not write; let LifeKeeper fail over",
                describe(r),
                fmt_key(key)
            ),
            Fence::KeyGone => format!(
                "{name}: this node's key {} is no longer registered (another node preempted it): this node is fenced; let LifeKeeper fail over",
                fmt_key(key)
            ),
            Fence::TakenOver {
                was: Some(was),
                now: Some(now),
            } => format!(
                "{name}: taken over: the disk shows no reservation and no registration, and its PR generation went from {was:#x} to {now:#x} since this node's last look: another node took it over and released it (or cleared it) meanwhile, so this node's view of the data is stale: it must not write or take the disk back; let LifeKeeper fail over (only a restore that LifeKeeper runs here takes it again)"
            ),
            Fence::TakenOver { .. } => format!(
                "{name}: taken over: this node lost the disk to another node earlier and has not been restored since: it must not write or take the disk back; let LifeKeeper fail over (only a restore that LifeKeeper runs here takes it again)"
            ),
        })
    }
}

/// Classifies a reservation state (read at PR generation `generation`) from this node's point
/// of view, with its memory of the disk `mem`.
pub(super) fn classify_state(
    res: Option<Reservation>,
    keys: &[u64],
    generation: Option<u32>,
    key: u64,
    t: PrType,
    mem: Memory<'_>,
) -> Result<Held, Fence> {
    let registered = keys.contains(&key);
    match res {
        None if keys.is_empty() => empty(generation, mem),
        Some(r) if !holds(&r, key, registered) => Err(Fence::OtherHolder(r)),
        _ if !registered => Err(Fence::KeyGone),
        None => Ok(Held::Free),
        Some(r) if r.type_code != t.code() => Ok(Held::WrongType(r.type_code)),
        Some(_) => Ok(Held::Ours),
    }
}

/// An empty disk, read at `now`: lost by this node when it had lost it already or when
/// another initiator acted since its last look; else a LU that lost its PR state.
fn empty(now: Option<u32>, mem: Memory<'_>) -> Result<Held, Fence> {
    if mem.lost() {
        return Err(Fence::TakenOver { was: None, now });
    }
    match (mem.generation(), now) {
        (Some(was), Some(n)) if n > was => Err(Fence::TakenOver {
            was: Some(was),
            now: Some(n),
        }),
        _ => Ok(Held::Lost),
    }
}

/// [`classify_state`] without memory, fenced as an error with exit 3.
fn classify(
    name: &str,
    res: Option<Reservation>,
    keys: &[u64],
    key: u64,
    t: PrType,
) -> Result<Held, Failure> {
    classify_state(res, keys, None, key, t, Memory::default()).map_err(|f| f.failure(name, key))
}

/// Reads the LU's reservation state and classifies it (see [`Held`]); fenced is an error with
/// exit 3. PR IN only.
pub fn judge<D: Disk>(lu: &mut D, key: u64, t: PrType, deadline: Instant) -> Result<Held, Failure> {
    let res = read_reservation(lu, deadline)?;
    // Holding a non-all-registrants reservation implies our key is registered: the keys need
    // reading only when the holder is not plainly us.
    if res.is_some_and(|r| r.key == key && !all_reg(&r)) {
        return classify(&dev(lu), res, &[key], key, t);
    }
    let keys = read_keys(lu, deadline)?;
    classify(&dev(lu), res, &keys, key, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(key: u64, t: u8) -> Reservation {
        Reservation {
            key,
            scope: 0,
            type_code: t,
        }
    }

    #[test]
    fn holder_rules() {
        assert!(holds(&res(7, 5), 7, true));
        assert!(!holds(&res(8, 5), 7, true));
        // All-registrants types report key 0: registration is what makes us a holder.
        assert!(holds(&res(0, 7), 7, true));
        assert!(!holds(&res(0, 8), 7, false));
    }
}
