//! The persistent-reservation commands on one LU that restore, remove, quickCheck, recover and
//! the fence agent are built from, over the [`Disk`]/[`Nexus`] traits: a PR OUT through every
//! path ([`register_all`], [`release_all`]) or through the first that answers ([`preempt`],
//! which falls back from PREEMPT AND ABORT to PREEMPT), the PR IN reads ([`read_keys`],
//! [`read_reservation`], [`read_state`]), and how their results read in messages.

use std::time::Instant;

use lkh_common::Failure;
use log::warn;
use sg_persist::{Error, PrType, Reservation};

use super::outcome::failure;
use crate::pr::{Disk, Nexus};
use crate::settings::fmt_key;

/// The LU's name in messages: the device name the admin gave.
pub(crate) fn dev<D: Disk>(lu: &D) -> String {
    lu.input().display().to_string()
}

/// A reservation in messages: its key and type.
pub(crate) fn describe(r: &Reservation) -> String {
    format!(
        "key {} ({})",
        fmt_key(r.key),
        PrType::code_name(r.type_code)
    )
}

/// REGISTER AND IGNORE EXISTING KEY on every path; returns how many succeeded.
pub(crate) fn register_all<D: Disk>(
    lu: &mut D,
    key: u64,
    deadline: Instant,
) -> Result<usize, Failure> {
    let name = dev(lu);
    let mut ok = 0;
    let mut last = None;
    for p in lu.paths() {
        match p.register_ignore(key, deadline) {
            Ok(()) => ok += 1,
            Err(e) => {
                warn!("{name}: path {}: {e}", p.label());
                last = Some(e);
            }
        }
    }
    match (ok, last) {
        (0, Some(e)) => Err(failure(&e)),
        (n, _) => Ok(n),
    }
}

/// PREEMPT AND ABORT of `victim`; when the target refuses that service action as unsupported
/// (tgt), PREEMPT, with a warning the first time (`plain` remembers it for this LU). Both are
/// the same compare-and-swap: they succeed only while `victim` is registered and this nexus
/// is registered with `key`.
pub(crate) fn preempt<D: Disk>(
    lu: &mut D,
    key: u64,
    victim: u64,
    t: PrType,
    plain: &mut bool,
    deadline: Instant,
) -> Result<(), Error> {
    if !*plain {
        match lu.any_path(|p| p.preempt_abort(key, victim, t, deadline)) {
            Err(e) if e.is_unsupported() => {
                warn!(
                    "{}: the target refuses PREEMPT AND ABORT ({e}), which SPC-3 and SPC-4 define: using PREEMPT instead; the target does not abort the preempted node's queued commands (they still get RESERVATION CONFLICT when they run)",
                    dev(lu)
                );
                *plain = true;
            }
            other => return other,
        }
    }
    lu.any_path(|p| p.preempt(key, victim, t, deadline))
}

/// READ KEYS through the first answering path: one key per registered I_T nexus.
pub(crate) fn read_keys<D: Disk>(lu: &mut D, deadline: Instant) -> Result<Vec<u64>, Failure> {
    lu.any_path(|p| p.read_keys(deadline))
        .map(|k| k.keys)
        .map_err(|e| failure(&e))
}

/// READ RESERVATION through the first answering path.
pub(crate) fn read_reservation<D: Disk>(
    lu: &mut D,
    deadline: Instant,
) -> Result<Option<Reservation>, Failure> {
    lu.any_path(|p| p.read_reservation(deadline))
        .map(|rs| rs.reservation)
        .map_err(|e| failure(&e))
}

/// How many I_T nexuses are registered with `key`.
pub(crate) fn count(keys: &[u64], key: u64) -> usize {
    keys.iter().filter(|k| **k == key).count()
}

/// This node registers its key once per path (I_T nexus). More registrations of the key than
/// the LU has paths here means another initiator holds it too: a second node configured with
/// the same key — then neither can fence the other — or registrations left by this node's
/// earlier initiator ports (after a WWPN or IQN change). One line naming both, or `None`.
pub fn shared_key_warning<D: Disk>(lu: &D, key: u64, registrations: usize) -> Option<String> {
    let paths = lu.live() + lu.dead();
    (registrations > paths).then(|| {
        format!(
            "{}: this node's key {} is registered {registrations} times but this node has {paths} path(s) to the disk: if another node uses the same key (a copied KEY= or node.key), fencing between the two does not work: give every node its own key; otherwise these are stale registrations of this node's earlier initiator ports (after a WWPN or initiator name change), which `lkh-scsipr status` lists with their initiators",
            dev(lu),
            fmt_key(key)
        )
    })
}

/// RELEASE of the reservation of type `code` that `key` holds, through every path: the holding
/// nexus releases it, the others answer GOOD (registered) or RESERVATION CONFLICT. A type code
/// outside the six defined ones cannot be named in a RELEASE: nothing is sent then.
pub(super) fn release_all<D: Disk>(lu: &mut D, key: u64, code: u8, deadline: Instant) {
    let Some(t) = PrType::from_code(code) else {
        return;
    };
    let name = dev(lu);
    for p in lu.paths() {
        match p.release(key, t, deadline) {
            Ok(()) => {}
            Err(e) if e.is_conflict() => {}
            Err(e) => warn!("{name}: path {}: {e}", p.label()),
        }
    }
}

/// Reads keys and reservation; returns (reservation, how often our key is registered, keys).
pub(super) fn read_state<D: Disk>(
    lu: &mut D,
    key: u64,
    deadline: Instant,
) -> Result<(Option<Reservation>, usize, Vec<u64>), Failure> {
    let (res, keys, _) = look(lu, deadline)?;
    Ok((res, count(&keys, key), keys))
}

/// The LU's state as one snapshot: keys, reservation and the PR generation both were read at.
/// When the two answers carry different generations (a PR OUT landed between them) both are
/// read again, twice at most; the last pair is returned with the later generation.
pub(super) fn look<D: Disk>(
    lu: &mut D,
    deadline: Instant,
) -> Result<(Option<Reservation>, Vec<u64>, u32), Failure> {
    let mut tries = 0;
    loop {
        let keys = lu
            .any_path(|p| p.read_keys(deadline))
            .map_err(|e| failure(&e))?;
        let res = lu
            .any_path(|p| p.read_reservation(deadline))
            .map_err(|e| failure(&e))?;
        tries += 1;
        if res.generation == keys.generation || tries == 3 {
            return Ok((
                res.reservation,
                keys.keys,
                res.generation.max(keys.generation),
            ));
        }
    }
}

/// What the disk shows, for a failure message: holder and registrations.
pub(super) fn shows(res: Option<Reservation>, keys: &[u64], key: u64) -> String {
    let mut uniq: Vec<u64> = Vec::new();
    for k in keys {
        if !uniq.contains(k) {
            uniq.push(*k);
        }
    }
    let regs = uniq
        .iter()
        .map(|k| {
            let mut s = fmt_key(*k);
            if *k == key {
                s += " (this node)";
            }
            s
        })
        .collect::<Vec<_>>();
    format!(
        "the disk shows reservation {}, registered {}",
        res.map_or_else(|| "none".to_owned(), |r| describe(&r)),
        if regs.is_empty() {
            "nobody".to_owned()
        } else {
            regs.join(", ")
        }
    )
}
