//! quickCheck and recover on one LU ([`check_lu`]).
//!
//! - quickCheck reads the reservation and the keys (PR IN only, the assessment
//!   [`assess_lu`]). Another holder, or our key gone while others are registered → fenced
//!   (exit 3); no reservation and no registration at all → the LU lost its PR state (a target
//!   restarted without persist-through-power-loss, or PR OUT CLEAR): exit 1, not fenced;
//!   nobody holds → exit 1 (recover re-takes it). Path registrations: while this node's
//!   records still describe the LU (see [`super::records`]) no path can have lost its
//!   registration, so a healthy check sends no PR OUT. Otherwise each path is probed with
//!   REGISTER(key, key); a path that lost its registration is re-registered, judged right
//!   before and right after (see [`super::repair`]): a takeover meanwhile removes what was
//!   just added → exit 3.
//! - recover: as quickCheck, and reserve again when nobody holds (or re-take with the
//!   configured type); after a PR state loss it registers and reserves again (the same
//!   compare-and-swap as restore) when our records say this node held the disk.

use std::time::Instant;

use lkh_common::{Assessment, Failure};
use log::{info, warn};
use sg_persist::PrType;

use super::assess::{LuHealth, PathReg, Verdict, assess_lu, lost_why};
use super::classify::Held;
use super::outcome::failure;
use super::prim::{dev, release_all};
use super::records::{Done, LuRecord, Memory, Records, record};
use super::repair::{
    held_on_live_path, judge_ours, move_to_live_nexus, probe_paths, single_holder_type,
};
use super::restore::{Start, take_observed};
use crate::pr::{Disk, Nexus};
use crate::settings::fmt_key;
use sg_persist::exec::join_all;

/// quickCheck (repair = false: only re-registers paths) and recover (repair = true: also
/// re-takes a reservation nobody holds, or fixes its type, or re-takes a LU that lost its PR
/// state when this node held it). Both start from [`assess_lu`]; a healthy LU whose records
/// hold is answered from that look alone (no PR OUT). Otherwise the paths are probed (and
/// re-registered, judged before and after, see [`probe_paths`]), the repair made, and the
/// answer is a second look, with what the probe found on each path.
#[cfg(test)]
pub async fn check_lu<D: Disk>(
    lu: &mut D,
    key: u64,
    t: PrType,
    repair: bool,
    mem: Memory<'_>,
    deadline: Instant,
) -> Result<Done, Failure> {
    check_lu_seen(lu, key, t, repair, mem, deadline).await.0
}

/// [`check_lu`], and the PR generation its first look read (`None`: no answer), which this
/// node records even when the check fails (see [`LuRecord::after`]).
pub async fn check_lu_seen<D: Disk>(
    lu: &mut D,
    key: u64,
    t: PrType,
    repair: bool,
    mem: Memory<'_>,
    deadline: Instant,
) -> (Result<Done, Failure>, Option<u32>) {
    let first = assess_lu(lu, key, t, mem, deadline).await;
    let seen = first.generation;
    (
        check_from(lu, key, t, repair, mem, first, deadline).await,
        seen,
    )
}

/// The look's answer, when it is the check's: never Ok for the verdicts it is used for.
fn answer(h: &LuHealth, mem: Memory<'_>) -> Result<Done, Failure> {
    h.outcome()
        .map(|m| (m, mem.seen.cloned().unwrap_or_default()))
}

async fn check_from<D: Disk>(
    lu: &mut D,
    key: u64,
    t: PrType,
    repair: bool,
    mem: Memory<'_>,
    first: LuHealth,
    deadline: Instant,
) -> Result<Done, Failure> {
    let name = dev(lu);
    let held = match &first.verdict {
        Verdict::Held(Held::Lost) if repair && mem.was_holder => {
            let out = take_observed(lu, key, t, &Start::default(), deadline).await?;
            warn!("{}: registered and reserved again", lost_why(&name));
            return Ok(out);
        }
        // the look's failure (these verdicts are never Ok) is the answer
        Verdict::Held(Held::Lost) | Verdict::Fenced(_) | Verdict::NoAnswer(_) => {
            return answer(&first, mem);
        }
        Verdict::Held(held) => *held,
    };
    let quiet = first
        .paths
        .iter()
        .any(|p| matches!(p.reg, PathReg::Recorded | PathReg::Listed));
    let probed = if quiet {
        None
    } else {
        Some(probe_paths(lu, key, t, deadline).await?)
    };
    match held {
        Held::Ours if single_holder_type(t) && !quiet => {
            if !held_on_live_path(lu, key, t, deadline).await {
                move_to_live_nexus(lu, key, t, deadline).await?
            }
        }
        // Lost was answered above
        Held::Ours | Held::Lost => {}
        Held::Free if repair => {
            match lu
                .any_path(async |p| p.reserve(key, t, deadline).await)
                .await
            {
                Ok(()) => info!(
                    "{name}: nobody held the reservation: taken again with {}",
                    fmt_key(key)
                ),
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(failure(&e)),
            }
            judge_ours(lu, key, t, deadline).await?;
        }
        Held::WrongType(c) if repair => {
            release_all(lu, key, c, deadline).await;
            lu.any_path(async |p| p.reserve(key, t, deadline).await)
                .await
                .map_err(|e| failure(&e))?;
            judge_ours(lu, key, t, deadline).await?;
        }
        // quickCheck: the look's failure
        Held::Free | Held::WrongType(_) => return answer(&first, mem),
    }
    match (quiet, held, mem.seen) {
        // nothing was sent but the look's reads: it is the answer, the records stand
        (true, Held::Ours, seen) => {
            let msg = first.outcome()?;
            // listed by READ FULL STATUS: the look itself verified every path
            let listed = first.paths.iter().any(|p| p.reg == PathReg::Listed);
            let rec = match seen.filter(|_| !listed) {
                Some(seen) => LuRecord {
                    generation: first.generation,
                    full_status: *lu.full_status(),
                    ..seen.clone()
                },
                None => record(lu, first.ours(), first.generation),
            };
            Ok((msg, rec))
        }
        _ => {
            let mut again = assess_lu(lu, key, t, mem, deadline).await;
            for (p, r) in again.paths.iter_mut().zip(probed.into_iter().flatten()) {
                p.reg = r;
            }
            let msg = again.outcome()?;
            let rec = match (quiet, mem.seen) {
                (true, Some(seen)) => LuRecord {
                    generation: again.generation,
                    full_status: *lu.full_status(),
                    ..seen.clone()
                },
                _ => record(lu, again.ours(), again.generation),
            };
            Ok((msg, rec))
        }
    }
}

/// quickCheck or recover of a resource: [`check_lu_seen`] on every LU at once (`lus`, each
/// opened on its own; `names` their device names, for those that could not be opened, whose
/// failure is their answer), each judged with this node's records `known`. Returns per LU its
/// name, its answer and the PR generation its first look read.
pub async fn check_all<D: Disk>(
    lus: &mut [Result<D, Failure>],
    names: &[String],
    key: u64,
    t: PrType,
    repair: bool,
    known: &Records,
    deadline: Instant,
) -> Vec<(String, Result<Done, Failure>, Option<u32>)> {
    join_all(lus.iter_mut().zip(names).map(|(lu, name)| async move {
        match lu {
            Ok(lu) => {
                let mem = known.memory(name);
                let (out, seen) = check_lu_seen(lu, key, t, repair, mem, deadline).await;
                (name.clone(), out, seen)
            }
            Err(f) => (name.clone(), Err(f.clone()), None),
        }
    }))
    .await
}
