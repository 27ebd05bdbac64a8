//! What a reservation state means for this node: [`Held`] (ours, nobody holds, ours with
//! another type, or the LU lost its PR state) or [`Fence`] (another node took the disk: exit
//! 3). One classification ([`classify_state`]) serves the assessment, restore's final
//! judgement and every re-judging of quickCheck and recover; [`judge`] reads the state with PR
//! IN only and classifies it.
//!
//! Under an all-registrants type every registrant holds and the reservation's key is 0, so
//! holding is a matter of being registered ([`holds`]).

use std::time::Instant;

use lkh_common::Failure;
use sg_persist::{PrType, Reservation};

use super::prim::{describe, dev, read_keys, read_reservation};
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
    /// No reservation and no registration at all: the LU lost its PR state (a target restart
    /// without persist-through-power-loss, PR OUT CLEAR). Not fenced: nobody else holds.
    Lost,
}

/// Why this node is fenced: another node took the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// Another key holds the reservation.
    OtherHolder(Reservation),
    /// Our key is no longer registered while other keys are (another node preempted it).
    KeyGone,
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
        })
    }
}

/// Classifies a reservation state from this node's point of view.
pub(super) fn classify_state(
    res: Option<Reservation>,
    keys: &[u64],
    key: u64,
    t: PrType,
) -> Result<Held, Fence> {
    let registered = keys.contains(&key);
    match res {
        None if keys.is_empty() => Ok(Held::Lost),
        Some(r) if !holds(&r, key, registered) => Err(Fence::OtherHolder(r)),
        _ if !registered => Err(Fence::KeyGone),
        None => Ok(Held::Free),
        Some(r) if r.type_code != t.code() => Ok(Held::WrongType(r.type_code)),
        Some(_) => Ok(Held::Ours),
    }
}

/// [`classify_state`], fenced as an error with exit 3.
fn classify(
    name: &str,
    res: Option<Reservation>,
    keys: &[u64],
    key: u64,
    t: PrType,
) -> Result<Held, Failure> {
    classify_state(res, keys, key, t).map_err(|f| f.failure(name, key))
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
