//! The persistent-reservation commands on one LU that restore, remove, quickCheck, recover and
//! the fence agent are built from, over the [`Disk`]/[`Nexus`] traits: a PR OUT through every
//! path at once ([`register_all`], [`release_all`]) or through the first that answers
//! ([`preempt`], which falls back from PREEMPT AND ABORT to PREEMPT), the PR IN reads
//! ([`read_keys`], [`read_reservation`], [`read_state`], and [`look`]: one READ FULL STATUS
//! where the target has it, else READ KEYS and READ RESERVATION), and how their results read
//! in messages.

use std::time::Instant;

use lkh_common::Failure;
use log::warn;
use sg_persist::exec::join_all;
use sg_persist::{Error, FullStatus, PrType, Reservation};

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

/// REGISTER AND IGNORE EXISTING KEY on every path, all at once; returns how many succeeded.
pub(crate) async fn register_all<D: Disk>(
    lu: &mut D,
    key: u64,
    deadline: Instant,
) -> Result<usize, Failure> {
    let name = dev(lu);
    let mut ok = 0;
    let mut last = None;
    let done = join_all(lu.paths().iter_mut().map(|p| async move {
        let r = p.register_ignore(key, deadline).await;
        (p.label().to_owned(), r)
    }))
    .await;
    for (label, r) in done {
        match r {
            Ok(()) => ok += 1,
            Err(e) => {
                warn!("{name}: path {label}: {e}");
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
pub(crate) async fn preempt<D: Disk>(
    lu: &mut D,
    key: u64,
    victim: u64,
    t: PrType,
    plain: &mut bool,
    deadline: Instant,
) -> Result<(), Error> {
    if !*plain {
        match lu
            .any_path(async |p| p.preempt_abort(key, victim, t, deadline).await)
            .await
        {
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
    lu.any_path(async |p| p.preempt(key, victim, t, deadline).await)
        .await
}

/// READ KEYS through the first answering path: one key per registered I_T nexus.
pub(crate) async fn read_keys<D: Disk>(lu: &mut D, deadline: Instant) -> Result<Vec<u64>, Failure> {
    lu.any_path(async |p| p.read_keys(deadline).await)
        .await
        .map(|k| k.keys)
        .map_err(|e| failure(&e))
}

/// READ RESERVATION through the first answering path.
pub(crate) async fn read_reservation<D: Disk>(
    lu: &mut D,
    deadline: Instant,
) -> Result<Option<Reservation>, Failure> {
    lu.any_path(async |p| p.read_reservation(deadline).await)
        .await
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

/// RELEASE of the reservation of type `code` that `key` holds, through every path at once:
/// the holding nexus releases it, the others answer GOOD (registered) or RESERVATION
/// CONFLICT. A type code outside the six defined ones cannot be named in a RELEASE: nothing is
/// sent then.
pub(super) async fn release_all<D: Disk>(lu: &mut D, key: u64, code: u8, deadline: Instant) {
    let Some(t) = PrType::from_code(code) else {
        return;
    };
    let name = dev(lu);
    let done = join_all(lu.paths().iter_mut().map(|p| async move {
        let r = p.release(key, t, deadline).await;
        (p.label().to_owned(), r)
    }))
    .await;
    for (label, r) in done {
        match r {
            Ok(()) => {}
            Err(e) if e.is_conflict() => {}
            Err(e) => warn!("{name}: path {label}: {e}"),
        }
    }
}

/// Reads keys and reservation; returns (reservation, how often our key is registered, keys).
pub(super) async fn read_state<D: Disk>(
    lu: &mut D,
    key: u64,
    deadline: Instant,
) -> Result<(Option<Reservation>, usize, Vec<u64>), Failure> {
    let (res, keys, _) = look(lu, deadline).await?;
    Ok((res, count(&keys, key), keys))
}

/// One look at a LU: the reservation, the registered keys (one per I_T nexus) and the PR
/// generation they were read at, as one snapshot; with READ FULL STATUS, which nexus each
/// registration is through.
#[derive(Debug, Clone)]
pub(crate) struct Look {
    pub res: Option<Reservation>,
    pub keys: Vec<u64>,
    pub generation: u32,
    pub full: Option<FullStatus>,
}

/// The reservation READ FULL STATUS shows: the holding registration's key and type (key 0
/// under an all-registrants type, as READ RESERVATION reports it). `None` when the answer
/// does not say it plainly (a holder without a defined type, several holders of a
/// single-holder type): READ RESERVATION is asked then.
fn reservation_of(fs: &FullStatus) -> Option<Option<Reservation>> {
    let holders: Vec<_> = fs.registrations.iter().filter(|r| r.holder).collect();
    let Some(typed) = holders
        .iter()
        .find(|r| PrType::from_code(r.type_code).is_some())
    else {
        return holders.is_empty().then_some(None);
    };
    let t = PrType::from_code(typed.type_code)?;
    if !t.all_registrants() && holders.iter().any(|h| h.key != typed.key) {
        return None;
    }
    Some(Some(Reservation {
        key: if t.all_registrants() { 0 } else { typed.key },
        scope: typed.scope,
        type_code: typed.type_code,
    }))
}

/// The LU's state as one snapshot ([`Look`]): one READ FULL STATUS where the target answers
/// it (the disk remembers whether it does, [`Disk::full_status`]), else READ KEYS and READ
/// RESERVATION; when those two carry different generations (a PR OUT landed between them)
/// both are read again, twice at most, and the last pair is returned with the later
/// generation.
pub(crate) async fn look_full<D: Disk>(lu: &mut D, deadline: Instant) -> Result<Look, Failure> {
    let mut full = None;
    if *lu.full_status() != Some(false) {
        match lu
            .any_path(async |p| p.read_full_status(deadline).await)
            .await
        {
            Ok(fs) => {
                *lu.full_status() = Some(true);
                if let Some(res) = reservation_of(&fs) {
                    return Ok(Look {
                        res,
                        keys: fs.registrations.iter().map(|r| r.key).collect(),
                        generation: fs.generation,
                        full: Some(fs),
                    });
                }
                full = Some(fs);
            }
            Err(e) if e.is_unsupported() => *lu.full_status() = Some(false),
            // an answer too long or malformed: the two plain reads
            Err(Error::Parse { .. }) => {}
            Err(e) => return Err(failure(&e)),
        }
    }
    let mut tries = 0;
    loop {
        let keys = lu
            .any_path(async |p| p.read_keys(deadline).await)
            .await
            .map_err(|e| failure(&e))?;
        let res = lu
            .any_path(async |p| p.read_reservation(deadline).await)
            .await
            .map_err(|e| failure(&e))?;
        tries += 1;
        if res.generation == keys.generation || tries == 3 {
            let generation = res.generation.max(keys.generation);
            return Ok(Look {
                res: res.reservation,
                keys: keys.keys,
                generation,
                full: full.filter(|f| f.generation == generation),
            });
        }
    }
}

/// [`look_full`] as (reservation, keys, generation).
pub(super) async fn look<D: Disk>(
    lu: &mut D,
    deadline: Instant,
) -> Result<(Option<Reservation>, Vec<u64>, u32), Failure> {
    let l = look_full(lu, deadline).await?;
    Ok((l.res, l.keys, l.generation))
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
