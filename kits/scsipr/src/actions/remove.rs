//! remove on one LU ([`remove_lu`]): RELEASE through every path (a non-holder path answers
//! GOOD), unregister every path, and check that this node's key is gone; only this node's
//! registrations are touched. Registrations of our key left on nexuses no path reaches (old
//! WWPNs after a flip) are removed by a PREEMPT of our own key from a live path. A disk that
//! does not answer at all does not block a switchover ([`unreachable_on_remove`]): the next
//! holder's restore preempts this node's key. A resource of several disks is removed disk by
//! disk ([`remove_each`]): one that does not answer never keeps the others registered.

use std::time::Instant;

use lkh_common::{Exit, Failure};
use log::{info, warn};
use sg_persist::PrType;

use super::classify::all_reg;
use super::prim::{dev, read_state, release_all};
use crate::pr::{Disk, Nexus};
use crate::settings::fmt_key;

/// remove on one LU: release, unregister every path; verify our key is gone.
pub fn remove_lu<D: Disk>(
    lu: &mut D,
    key: u64,
    t: PrType,
    deadline: Instant,
) -> Result<String, Failure> {
    let name = dev(lu);
    let (res, ours, _) = match read_state(lu, key, deadline) {
        Ok(st) => st,
        Err(f) if f.exit == Exit::Failed => return Ok(unreachable_on_remove(&f)),
        Err(f) => return Err(f),
    };
    if ours == 0 {
        return Ok(format!("{name}: not registered with {}", fmt_key(key)));
    }
    // Under an all-registrants type a RELEASE would end the other registrants' hold too.
    if let Some(r) = res
        && r.key == key
        && !all_reg(&r)
    {
        release_all(lu, key, r.type_code, deadline);
    }
    for p in lu.paths() {
        if let Err(e) = p.register_ignore(0, deadline) {
            warn!("{name}: path {}: unregistering failed: {e}", p.label());
        }
    }
    let (mut res, mut ours, _) = read_state(lu, key, deadline)?;
    if ours > 0 {
        // Our key on nexuses we cannot reach (old WWPNs after a flip, a dead path): register
        // one live path again and PREEMPT our own key, which removes every other registration
        // carrying it (never another node's), then unregister that path too.
        let stale = ours;
        if let Some(p) = lu.paths().first_mut() {
            let cleaned = p
                .register_ignore(key, deadline)
                .and_then(|()| p.preempt(key, key, t, deadline));
            let last = p.register_ignore(0, deadline);
            match cleaned.and(last) {
                Ok(()) => info!(
                    "{name}: removed {stale} registration(s) of {} on unreachable or stale nexuses",
                    fmt_key(key)
                ),
                Err(e) => warn!("{name}: removing stale registrations failed: {e}"),
            }
        }
        (res, ours, _) = read_state(lu, key, deadline)?;
    }
    if ours > 0 {
        return Err(Failure::failed(format!(
            "{name}: key {} is still registered on {ours} nexus(es) after unregistering (a path that does not answer, or a stale nexus): run remove again when all paths are up",
            fmt_key(key)
        )));
    }
    if let Some(r) = res
        && r.key == key
    {
        return Err(Failure::failed(format!(
            "{name}: still reserved by {} after release: run remove again; `lkh-scsipr status DEVICE` shows which path holds it",
            fmt_key(key)
        )));
    }
    Ok(format!(
        "{name}: released and unregistered {}",
        fmt_key(key)
    ))
}

/// remove on a disk this node cannot reach: nothing can be released from here, and the next
/// holder's restore preempts this node's key anyway, so the switchover must not be blocked.
pub(super) fn unreachable_on_remove(f: &Failure) -> String {
    warn!("{f}");
    format!(
        "the disk does not answer from this node ({}): nothing released there; the next node's restore preempts this node's key",
        f.message
    )
}

/// remove of a resource: every disk that could be opened (`lus`: each disk opened on its own,
/// or why it could not be) is released and unregistered, whatever another disk answered; a
/// disk that does not answer is reported, not waited for. Exit 0 only when no disk that
/// answered still carries this node's key.
pub fn remove_each<D: Disk>(
    lus: Vec<Result<D, Failure>>,
    key: u64,
    t: PrType,
    deadline: Instant,
) -> Vec<Result<String, Failure>> {
    lus.into_iter()
        .map(|lu| match lu {
            Ok(mut lu) => remove_lu(&mut lu, key, t, deadline),
            Err(f) if f.exit == Exit::Failed => Ok(unreachable_on_remove(&f)),
            Err(f) => Err(f),
        })
        .collect()
}
