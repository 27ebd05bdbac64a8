//! The repairs quickCheck and recover (and restore, for a reservation held through a vanished
//! nexus) make while this node holds a disk: a path that lost its registration is registered
//! again ([`probe_paths`]), a reservation held through a nexus that is none of our live paths
//! is moved to a live one ([`move_to_live_nexus`]).
//!
//! A takeover by another node can happen during any repair, and a registration added after it
//! would keep this node registered under the new holder's registrants-only reservation. So
//! every re-registration is judged right before and right after ([`rejudge`]), and one that a
//! takeover overtook is removed again ([`undo`]) and reported as fenced (exit 3).

use std::time::Instant;

use lkh_common::Failure;
use log::{info, warn};
use sg_persist::PrType;

use super::assess::PathReg;
use super::classify::{Held, judge};
use super::outcome::failure;
use super::prim::dev;
use crate::pr::{Disk, Nexus};
use crate::settings::fmt_key;

/// Reads the reservation and the keys again: anything but fenced or a lost PR state lets a
/// re-registration go on.
async fn rejudge<D: Disk>(
    lu: &mut D,
    key: u64,
    t: PrType,
    deadline: Instant,
) -> Result<(), Failure> {
    match judge(lu, key, t, deadline).await? {
        Held::Lost => Err(Failure::failed(format!(
            "{}: the disk lost every registration and its reservation meanwhile: recover takes it again",
            dev(lu)
        ))),
        _ => Ok(()),
    }
}

/// Unregisters the paths in `added` (re-registered by this check) after `f` stopped it.
async fn undo<D: Disk>(lu: &mut D, added: &[usize], f: Failure, deadline: Instant) -> Failure {
    let name = dev(lu);
    let mut left = Vec::new();
    for &i in added {
        let p = &mut lu.paths()[i];
        if let Err(e) = p.register_ignore(0, deadline).await {
            left.push(format!("{} ({e})", p.label()));
        }
    }
    if added.is_empty() {
        f
    } else if left.is_empty() {
        Failure::new(
            f.exit,
            format!(
                "{f}; the registration just added on {} path(s) was removed again",
                added.len()
            ),
        )
    } else {
        Failure::new(
            f.exit,
            format!(
                "{f}; removing the registration just added failed on {}: this node may still write to {name}: run `lkh-scsipr remove` now",
                left.join(", ")
            ),
        )
    }
}

/// Probes each path with REGISTER(key, key) and re-registers the ones that lost our key.
/// Returns what each live path showed (never [`PathReg::Recorded`] or [`PathReg::Unprobed`]).
///
/// A takeover by another node also makes REGISTER(key, key) conflict: before every
/// re-registration the state is judged again, and after it once more, so that a node fenced
/// meanwhile removes what it just added and reports exit 3 instead of staying registered under
/// the new holder's registrants-only reservation.
pub(super) async fn probe_paths<D: Disk>(
    lu: &mut D,
    key: u64,
    t: PrType,
    deadline: Instant,
) -> Result<Vec<PathReg>, Failure> {
    let name = dev(lu);
    let mut regs = Vec::new();
    let mut last = None;
    let mut added = Vec::new();
    for i in 0..lu.live() {
        match lu.paths()[i].register(key, key, deadline).await {
            Ok(()) => regs.push(PathReg::Registered),
            Err(e) if e.is_conflict() => {
                if let Err(f) = rejudge(lu, key, t, deadline).await {
                    return Err(undo(lu, &added, f, deadline).await);
                }
                let p = &mut lu.paths()[i];
                let label = p.label().to_owned();
                let hctl = p.hctl().unwrap_or("?").to_owned();
                let r = p.register_ignore(key, deadline).await;
                if r.as_ref().is_ok() || r.as_ref().is_err_and(sg_persist::device::path_failure) {
                    // a timeout may still have registered it: verify as if it had
                    added.push(i);
                }
                if let Err(f) = rejudge(lu, key, t, deadline).await {
                    return Err(undo(lu, &added, f, deadline).await);
                }
                match r {
                    Ok(()) => {
                        warn!(
                            "{name}: path {label} ({hctl}) was not registered with {} (a new I_T nexus, e.g. after a virtual FC WWPN flip, or a path that came back): re-registered",
                            fmt_key(key)
                        );
                        regs.push(PathReg::ReRegistered);
                    }
                    Err(e) => {
                        warn!("{name}: path {label}: re-registering failed: {e}");
                        regs.push(PathReg::NoAnswer(format!("re-registering failed: {e}")));
                        last = Some(e);
                    }
                }
            }
            Err(e) => {
                warn!(
                    "{name}: path {} does not answer: {e}",
                    lu.paths()[i].label()
                );
                regs.push(PathReg::NoAnswer(e.to_string()));
                last = Some(e);
            }
        }
    }
    let fixed = regs.iter().filter(|r| **r == PathReg::ReRegistered).count();
    // A probe that did not answer (a slow path) gave another node time to take over; a
    // re-registration may have landed after it did: judge once more.
    if (fixed > 0 || last.is_some())
        && let Err(f) = rejudge(lu, key, t, deadline).await
    {
        return Err(undo(lu, &added, f, deadline).await);
    }
    if !regs.iter().any(PathReg::registered) {
        return Err(match last {
            Some(e) => Failure::failed(format!(
                "{name}: no path answers ({e}); the LU is unreachable from this node"
            )),
            None => Failure::failed(format!("{name}: no usable path")),
        });
    }
    Ok(regs)
}

/// Types under which only the one holding I_T nexus may write (or access).
pub(super) fn single_holder_type(t: PrType) -> bool {
    matches!(t, PrType::WriteExclusive | PrType::ExclusiveAccess)
}

/// Under WRITE EXCLUSIVE / EXCLUSIVE ACCESS, whether the nexus holding our key's reservation is
/// one of our live paths: RESERVE of the held type is a no-op answered GOOD by the holder and
/// RESERVATION CONFLICT by every other nexus, our own included. Stops at the first GOOD.
/// (RESERVE does not change the PR generation.)
pub(super) async fn held_on_live_path<D: Disk>(
    lu: &mut D,
    key: u64,
    t: PrType,
    deadline: Instant,
) -> bool {
    for p in lu.paths() {
        if p.reserve(key, t, deadline).await.is_ok() {
            return true;
        }
    }
    false
}

/// Our key holds the reservation through a nexus that no longer exists (the old WWPN after a
/// flip): under WRITE EXCLUSIVE / EXCLUSIVE ACCESS none of our paths could write then. PREEMPT
/// with our own key moves the reservation to a live nexus and drops every registration of our
/// key elsewhere (stale nexuses included); the other live paths are registered again at once.
/// Non-holder paths cannot write under these types anyway, so the short gap costs nothing.
pub(super) async fn move_to_live_nexus<D: Disk>(
    lu: &mut D,
    key: u64,
    t: PrType,
    deadline: Instant,
) -> Result<(), Failure> {
    let name = dev(lu);
    let Some(first) = lu.paths().first_mut() else {
        return Ok(());
    };
    let moved = first.preempt(key, key, t, deadline).await;
    let label = first.label().to_owned();
    if let Err(e) = moved {
        // a conflict: this node's key is gone (another node took over): the look says so
        if e.is_conflict()
            && let Err(f) = judge(lu, key, t, deadline).await
        {
            return Err(f);
        }
        return Err(failure(&e));
    }
    // Each re-registration as in `probe_paths`: judged right before and right after, so a
    // takeover meanwhile never leaves this node registered under the new holder.
    let mut added = Vec::new();
    for i in 1..lu.live() {
        if let Err(f) = rejudge(lu, key, t, deadline).await {
            return Err(undo(lu, &added, f, deadline).await);
        }
        let p = &mut lu.paths()[i];
        match p.register_ignore(key, deadline).await {
            Ok(()) => added.push(i),
            Err(e) => warn!(
                "{name}: path {}: re-registering after the move failed: {e}",
                p.label()
            ),
        }
    }
    match judge_ours(lu, key, t, deadline).await {
        Ok(()) => {
            info!("{name}: reservation ({t}) moved to path {label} after its nexus changed");
            Ok(())
        }
        Err(f) => Err(undo(lu, &added, f, deadline).await),
    }
}

/// Judges the LU again after a repair: anything but ours means the repair did not take.
pub(super) async fn judge_ours<D: Disk>(
    lu: &mut D,
    key: u64,
    t: PrType,
    deadline: Instant,
) -> Result<(), Failure> {
    match judge(lu, key, t, deadline).await? {
        Held::Ours => Ok(()),
        _ => Err(Failure::failed(format!(
            "{}: the reservation could not be taken back: `lkh-scsipr status DEVICE` shows who holds it and with which type",
            dev(lu)
        ))),
    }
}
