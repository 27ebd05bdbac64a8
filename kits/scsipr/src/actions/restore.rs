//! restore: a compare-and-swap on the reservation holder, on one LU ([`restore_lu`]) and over
//! all of a resource's LUs ([`restore_all`]).
//!
//! - It first reads the reservation (the holder it *observed*, [`observe`]), then registers on
//!   every path (REGISTER AND IGNORE EXISTING KEY), then ([`take`]): nobody holds → RESERVE,
//!   and a RESERVE that conflicts means another node reserved first: this restore lost. The
//!   observed holder still holds → PREEMPT AND ABORT of exactly that key; if the key is gone
//!   (another node preempted it) or another key holds now, this restore lost to a live winner
//!   and never preempts it. Having won, it preempts every other registrant (no fenced node
//!   keeps write access under a registrants-only type); under an all-registrants type every
//!   registrant is a holder, so the preempts of each other's keys decide (a preempted node's
//!   own PREEMPT conflicts): one survives. Then it reads keys and reservation back, and exits
//!   0 only if this node holds then. Under a single-holder type a reservation already ours
//!   through a nexus that is none of our live paths (the old WWPN after a flip) is moved to a
//!   live one.
//! - Any failure after it registered — a lost race (exit 3), a timeout, a refusal — rolls its
//!   registrations back (as remove does, [`roll_back`]) and reports what the disk shows then;
//!   a disk held by another node makes it exit 3, whatever went wrong first.
//! - A resource of several disks is taken in one order on every node (by the LUs' designators
//!   and serial numbers, [`arbitration_order`](super::open::arbitration_order); two disks
//!   that cannot be told apart are refused with exit 2), stopping at the first disk
//!   lost: two nodes restoring at once meet on the same first disk and the loser never
//!   touches the others. Every disk is observed before anything is sent, so each
//!   compare-and-swap is against the holder seen at the start (a racer that won a later disk
//!   meanwhile is not an old holder). Having taken all, restore judges the earlier disks once
//!   more; a failure on any disk gives back the disks this restore took ([`give_back`]), so no
//!   restore that fails leaves a disk held.
//! - PREEMPT AND ABORT refused as unsupported (ILLEGAL REQUEST, invalid field in CDB: tgt) →
//!   PREEMPT with a warning ([`preempt`]): the same compare-and-swap, without aborting the
//!   victim's queue.
//!
//! recover's re-take of a LU that lost its PR state is the same compare-and-swap from an empty
//! observation ([`take_observed`] with [`Start::default`]).

use std::time::{Duration, Instant};

use lkh_common::{Exit, Failure};
use log::{info, warn};
use sg_persist::{Error, PrType, Reservation};

use super::challenge::holders;
use super::classify::{Held, all_reg, holds, judge};
use super::outcome::failure;
use super::prim::{
    count, describe, dev, look, preempt, read_reservation, read_state, register_all, release_all,
    shared_key_warning, shows,
};
use super::records::{Done, record};
use super::remove::remove_lu;
use super::repair::{held_on_live_path, move_to_live_nexus, single_holder_type};
use crate::pr::{Disk, Nexus};
use crate::settings::fmt_key;

/// Why this restore lost, as an exit-3 failure.
fn lost(name: &str, why: &str) -> Failure {
    Failure::fenced(format!(
        "{name}: another node won: {why}; this node does not hold the disk and must not write: let LifeKeeper bring the resource in service where it is held"
    ))
}

/// restore on one LU (see the module doc): observe, register, take, verify; any failure rolls
/// this node's registrations back.
#[cfg(test)]
pub fn restore_lu<D: Disk>(
    lu: &mut D,
    key: u64,
    t: PrType,
    deadline: Instant,
) -> Result<Done, Failure> {
    // Nothing is sent before this read: a disk that does not answer is left untouched.
    let start = observe(lu, deadline)?;
    take_observed(lu, key, t, &start, deadline)
}

/// The rest of restore on one LU, after it observed `start`: register, take, verify; any
/// failure rolls this node's registrations back.
pub(super) fn take_observed<D: Disk>(
    lu: &mut D,
    key: u64,
    t: PrType,
    start: &Start,
    deadline: Instant,
) -> Result<Done, Failure> {
    let out = register_all(lu, key, deadline).and_then(|n| take(lu, key, t, start, n, deadline));
    out.map_err(|f| roll_back(lu, key, t, f, deadline))
}

/// restore over all of a resource's LUs, in arbitration order (see the module doc). Every LU
/// is observed first, before anything is sent to any of them: the compare-and-swap of each
/// LU is against the holder seen when the restore started, not when it reached that LU (a
/// later look could see a racer's fresh win as an old holder and take it over). With
/// `challenge` (a LifeKeeper resource: the challenge window), the LUs another node holds are
/// challenged first ([`super::challenge`]), all at once: a holder that defends makes this
/// restore lose (exit 3) before it took anything, and the registrations the challenge made
/// are the ones the takeover uses (never made again after the window: a registration the
/// defender removed at the last moment must stay removed). The first failure stops it and
/// the LUs already taken are given back; with every LU taken, the earlier ones are judged
/// again (the last one's final read was just made), so exit 0 means this node holds every
/// disk at the end.
pub fn restore_all<D: Disk>(
    lus: &mut [D],
    key: u64,
    t: PrType,
    challenge: Option<Duration>,
    deadline: Instant,
) -> Result<Vec<Done>, Failure> {
    let starts = lus
        .iter_mut()
        .map(|lu| observe(lu, deadline))
        .collect::<Result<Vec<Start>, Failure>>()?;
    let held: Vec<usize> = (0..lus.len())
        .filter(|i| !holders(&starts[*i], key).is_empty())
        .collect();
    let mut registered: Vec<Option<usize>> = vec![None; lus.len()];
    if let Some(window) = challenge.filter(|_| !held.is_empty()) {
        match super::challenge::challenge(lus, &starts, &held, key, window, deadline) {
            Ok(regs) => {
                for (i, n) in regs {
                    registered[i] = Some(n);
                }
            }
            Err(f) => return Err(withdraw(lus, &held, key, t, f, deadline)),
        }
    }
    let mut done = Vec::new();
    for (i, start) in starts.iter().enumerate() {
        let lu = &mut lus[i];
        let r = match registered[i] {
            Some(n) => {
                take(lu, key, t, start, n, deadline).map_err(|f| roll_back(lu, key, t, f, deadline))
            }
            None => take_observed(lu, key, t, start, deadline),
        };
        match r {
            Ok(d) => done.push(d),
            Err(f) => {
                let f = withdraw(
                    lus,
                    &held[..]
                        .iter()
                        .copied()
                        .filter(|j| *j > i)
                        .collect::<Vec<_>>(),
                    key,
                    t,
                    f,
                    deadline,
                );
                return Err(give_back(lus, i, key, t, f, deadline));
            }
        }
    }
    let n = lus.len();
    for i in 0..n.saturating_sub(1) {
        let lu = &mut lus[i];
        let now = match judge(lu, key, t, deadline) {
            Ok(Held::Ours) => continue,
            Ok(Held::Free) => "nobody holds it".to_owned(),
            Ok(Held::Lost) => "it lost its PR state".to_owned(),
            Ok(Held::WrongType(c)) => format!("it is reserved with type code {c}"),
            Err(f) => return Err(give_back(lus, n, key, t, f, deadline)),
        };
        let lost_it = Failure::failed(format!(
            "{}: this node no longer holds it after taking the other disks ({now}): run restore again",
            dev(lu)
        ));
        return Err(give_back(lus, n, key, t, lost_it, deadline));
    }
    Ok(done)
}

/// Removes the registrations a challenge made on the LUs `which` after `f` ended the restore
/// (a holder defended one of them, or a later step failed before reaching them).
fn withdraw<D: Disk>(
    lus: &mut [D],
    which: &[usize],
    key: u64,
    t: PrType,
    f: Failure,
    deadline: Instant,
) -> Failure {
    let mut left = Vec::new();
    for &i in which {
        if let Err(e) = remove_lu(&mut lus[i], key, t, deadline) {
            left.push(format!("{} ({})", dev(&lus[i]), e.message));
        }
    }
    if which.is_empty() {
        f
    } else if left.is_empty() {
        Failure::new(
            f.exit,
            format!("{f}; this node's registrations were removed again"),
        )
    } else {
        Failure::new(
            f.exit,
            format!(
                "{f}; removing this node's registrations failed on {}: run `lkh-scsipr remove` before anything else",
                left.join(", ")
            ),
        )
    }
}

/// Gives back the first `taken` LUs after `f` ended a multi-disk restore, and says so.
fn give_back<D: Disk>(
    lus: &mut [D],
    taken: usize,
    key: u64,
    t: PrType,
    f: Failure,
    deadline: Instant,
) -> Failure {
    let mut notes = Vec::new();
    for lu in lus.iter_mut().take(taken) {
        let name = dev(lu);
        match remove_lu(lu, key, t, deadline) {
            Ok(_) => notes.push(format!("{name} given back")),
            Err(e) => notes.push(format!(
                "{name} could not be given back ({}): run `lkh-scsipr remove` before anything else",
                e.message
            )),
        }
    }
    let untried: Vec<String> = lus.iter().skip(taken + 1).map(dev).collect();
    if !untried.is_empty() {
        notes.push(format!("{} not tried", untried.join(", ")));
    }
    if notes.is_empty() {
        return f;
    }
    let exit = f.exit;
    Failure::new(exit, format!("{f}; {}", notes.join("; ")))
}

/// Removes what a failed restore registered and says what the disk shows then; another node
/// holding makes it exit 3.
fn roll_back<D: Disk>(lu: &mut D, key: u64, t: PrType, f: Failure, deadline: Instant) -> Failure {
    let undo = match remove_lu(lu, key, t, deadline) {
        Ok(_) => "this node's registrations were removed again".to_owned(),
        Err(e) => format!(
            "removing this node's registrations failed ({}): run `lkh-scsipr remove` before anything else",
            e.message
        ),
    };
    match read_state(lu, key, deadline) {
        Ok((res, ours, keys)) => {
            let other = res.is_some_and(|r| !holds(&r, key, ours > 0));
            let exit = if other { Exit::Fenced } else { f.exit };
            Failure::new(exit, format!("{f}; {undo}; {}", shows(res, &keys, key)))
        }
        Err(e) => Failure::new(
            f.exit,
            format!("{f}; {undo}; the state cannot be read back ({})", e.message),
        ),
    }
}

/// No answer (timeout, transport) on every path tried: the command may or may not have run.
fn no_answer(e: &Error) -> bool {
    matches!(e, Error::NoWorkingPath { .. }) || sg_persist::device::path_failure(e)
}

/// What restore saw before it registered: the reservation, and under an all-registrants
/// type the registered keys (every one of them a holder).
#[derive(Debug, Default)]
pub(super) struct Start {
    pub(super) res: Option<Reservation>,
    pub(super) keys: Vec<u64>,
}

/// The reservation, and under an all-registrants type the keys, as one snapshot: keys and
/// reservation are read again until both show the same PR generation (registrations did not
/// change in between, so every key read is a holder of the reservation read).
fn observe<D: Disk>(lu: &mut D, deadline: Instant) -> Result<Start, Failure> {
    let rs = |lu: &mut D| {
        lu.any_path(|p| p.read_reservation(deadline))
            .map_err(|e| failure(&e))
    };
    let first = rs(lu)?;
    if !first.reservation.is_some_and(|r| all_reg(&r)) {
        return Ok(Start {
            res: first.reservation,
            keys: Vec::new(),
        });
    }
    for _ in 0..4 {
        let keys = lu
            .any_path(|p| p.read_keys(deadline))
            .map_err(|e| failure(&e))?;
        let now = rs(lu)?;
        if now.generation == keys.generation {
            return Ok(Start {
                res: now.reservation,
                keys: if now.reservation.is_some_and(|r| all_reg(&r)) {
                    keys.keys
                } else {
                    Vec::new()
                },
            });
        }
    }
    Err(Failure::failed(format!(
        "{}: the registrations keep changing (another node is registering or preempting): nothing was changed here; run restore again",
        dev(lu)
    )))
}

fn take<D: Disk>(
    lu: &mut D,
    key: u64,
    t: PrType,
    start: &Start,
    registered: usize,
    deadline: Instant,
) -> Result<Done, Failure> {
    let name = dev(lu);
    // The one holder this restore may take the reservation from: the one it saw first.
    let observed = start
        .res
        .filter(|r| !all_reg(r) && r.key != key)
        .map(|r| r.key);
    let start_all_reg = start.res.is_some_and(|r| all_reg(&r));
    let mut preempted: Vec<u64> = Vec::new();
    let mut reserved = false;
    let mut plain = false;
    let mut live_checked = !single_holder_type(t);
    for round in 0..8 {
        let (res, ours, keys, generation) = read_state_for(lu, key, t, deadline)?;
        if round == 0
            && let Some(w) = shared_key_warning(lu, key, ours)
        {
            warn!("{w}");
        }
        if ours == 0 {
            return Err(lost(
                &name,
                &format!(
                    "it removed this node's registration while this restore ran ({})",
                    shows(res, &keys, key)
                ),
            ));
        }
        match res {
            None => match lu.any_path(|p| p.reserve(key, t, deadline)) {
                Ok(()) => {
                    reserved = true;
                    info!("{name}: reserved with {} ({t})", fmt_key(key));
                }
                Err(e) if e.is_conflict() => {
                    let now = read_reservation(lu, deadline)?;
                    if let Some(r) = now.filter(|r| !holds(r, key, true)) {
                        return Err(lost(
                            &name,
                            &format!("it reserved first ({})", describe(&r)),
                        ));
                    }
                }
                // it may have run: the next round reads what the disk shows
                Err(e) if no_answer(&e) => warn!("{name}: {e}"),
                Err(e) => return Err(failure(&e)),
            },
            Some(r) if holds(&r, key, true) => {
                if r.type_code != t.code() {
                    release_all(lu, key, r.type_code, deadline);
                    continue;
                }
                // Under an all-registrants type every registrant holds, whoever reserved: one
                // this restore neither saw at its start nor reserved itself is a live winner's.
                if all_reg(&r) && !reserved && !start_all_reg {
                    return Err(lost(&name, "it reserved first (an all-registrants type)"));
                }
                // A holder seen at the start that is gone, and not by this restore: another
                // node took it first.
                if all_reg(&r)
                    && let Some(k) = start
                        .keys
                        .iter()
                        .find(|k| **k != key && !keys.contains(*k) && !preempted.contains(*k))
                {
                    return Err(lost(
                        &name,
                        &format!("it removed {} first (an all-registrants type)", fmt_key(*k)),
                    ));
                }
                // Ours: no other registrant keeps write access, a racer registered meanwhile
                // included (its own PREEMPT then conflicts: it lost). Under an
                // all-registrants type every registrant holds: the first preempt to land
                // decides.
                let mut others: Vec<u64> = Vec::new();
                for k in &keys {
                    if *k != key && *k != 0 && !others.contains(k) {
                        others.push(*k);
                    }
                }
                if others.is_empty() {
                    // Already ours, through a nexus that may be gone (after a WWPN flip).
                    if !live_checked {
                        live_checked = true;
                        if !held_on_live_path(lu, key, t, deadline) {
                            move_to_live_nexus(lu, key, t, deadline)?;
                            continue;
                        }
                    }
                    // This read, the last one, is what restore reports.
                    return finish(&name, key, t, ours, registered, &preempted)
                        .map(|s| (s, record(lu, ours, Some(generation))));
                }
                for v in others {
                    match preempt(lu, key, v, t, &mut plain, deadline) {
                        Ok(()) => {
                            info!(
                                "{name}: preempted key {} (previous {})",
                                fmt_key(v),
                                describe(&r)
                            );
                            preempted.push(v);
                        }
                        // gone meanwhile (a racer rolling back), or this node was preempted:
                        // the next round reads which
                        Err(e) if e.is_conflict() => {}
                        Err(e) if no_answer(&e) => warn!("{name}: {e}"),
                        Err(e) => return Err(failure(&e)),
                    }
                }
            }
            Some(r) if observed == Some(r.key) => {
                match preempt(lu, key, r.key, t, &mut plain, deadline) {
                    Ok(()) => {
                        info!("{name}: took the reservation from {}", describe(&r));
                        preempted.push(r.key);
                    }
                    // the key is gone: another node preempted it first; the next round shows
                    Err(e) if e.is_conflict() => {}
                    Err(e) if no_answer(&e) => warn!("{name}: {e}"),
                    Err(e) => return Err(failure(&e)),
                }
            }
            Some(r) => {
                return Err(lost(
                    &name,
                    &format!(
                        "it took the reservation while this restore ran ({})",
                        describe(&r)
                    ),
                ));
            }
        }
    }
    Err(match read_state(lu, key, deadline) {
        Ok((res, _, keys)) => Failure::failed(format!(
            "{name}: the reservation did not settle in 8 rounds (other nodes keep registering or preempting); {}: run restore again",
            shows(res, &keys, key)
        )),
        Err(f) => f,
    })
}

/// Reads keys and reservation, the one that decides last: under an all-registrants type the
/// keys (every registrant holds), else the reservation (its key is the holder's).
fn read_state_for<D: Disk>(
    lu: &mut D,
    key: u64,
    t: PrType,
    deadline: Instant,
) -> Result<(Option<Reservation>, usize, Vec<u64>, u32), Failure> {
    if t.all_registrants() {
        let res = read_reservation(lu, deadline)?;
        let keys = lu
            .any_path(|p| p.read_keys(deadline))
            .map_err(|e| failure(&e))?;
        Ok((res, count(&keys.keys, key), keys.keys, keys.generation))
    } else {
        let (res, keys, generation) = look(lu, deadline)?;
        Ok((res, count(&keys, key), keys, generation))
    }
}

/// The end of a successful restore, judged on its last read: this node holds with type `t`
/// (checked by the caller), nobody else is registered, and every path it registered shows
/// the key.
fn finish(
    name: &str,
    key: u64,
    t: PrType,
    ours: usize,
    registered: usize,
    preempted: &[u64],
) -> Result<String, Failure> {
    if ours < registered {
        return Err(Failure::failed(format!(
            "{name}: only {ours} of {registered} paths show key {} after registering (a path dropped its registration): see `lkh-scsipr status DEVICE`, then run restore again",
            fmt_key(key)
        )));
    }
    let mut s = format!(
        "{name}: reserved by {} ({t}) on {registered} path(s)",
        fmt_key(key)
    );
    if !preempted.is_empty() {
        s += &format!(
            ", took over from {}",
            preempted
                .iter()
                .map(|k| fmt_key(*k))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(s)
}
