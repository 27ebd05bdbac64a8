//! The holder's side of owner defense ([`defend_lu`]), run by `watch` on every disk of every
//! LifeKeeper resource this node has in service, once per defense interval. A registration
//! that is not this node's is a challenge (a node that stopped hearing this one and restores,
//! see [`super::challenge`]) or a leftover: it is removed with a PREEMPT of that key alone,
//! which leaves the reservation and this node's own registrations — and so its I/O — as they
//! are. The challenger, whose window is two intervals and a margin, finds its registration
//! gone and exits 3.
//!
//! A holder whose own key is gone has lost, whatever its clocks say (a VM paused longer than
//! the window resumes with no sign of the pause): nothing is sent, and it never registers
//! again; the caller judges it and applies ON_FENCED. Its PREEMPT of a challenger that already
//! took over conflicts for the same reason.

use std::time::Instant;

use lkh_common::Failure;
use log::warn;
use sg_persist::PrType;

use super::outcome::failure;
use super::prim::dev;
use crate::pr::{Disk, Nexus};
use crate::settings::fmt_key;

/// What one defense look found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Defense {
    /// Only this node is registered.
    Quiet,
    /// These keys were registered too and have been removed.
    Removed(Vec<u64>),
    /// These keys are registered too and could not be removed (the PREEMPT conflicted or did
    /// not answer): the next look tries again.
    Unsettled(Vec<u64>),
    /// This node's key is not registered: it has lost the disk (the caller judges how).
    Lost,
}

/// One defense look at a LU this node holds with `key` under type `t`: READ KEYS, then a
/// PREEMPT of every other key, through the first path that carries this node's key.
pub fn defend_lu<D: Disk>(
    lu: &mut D,
    key: u64,
    t: PrType,
    deadline: Instant,
) -> Result<Defense, Failure> {
    let name = dev(lu);
    let keys = lu
        .any_path(|p| p.read_keys(deadline))
        .map_err(|e| failure(&e))?
        .keys;
    if !keys.contains(&key) {
        return Ok(Defense::Lost);
    }
    let mut others: Vec<u64> = Vec::new();
    for k in keys {
        if k != key && k != 0 && !others.contains(&k) {
            others.push(k);
        }
    }
    if others.is_empty() {
        return Ok(Defense::Quiet);
    }
    let (mut removed, mut left) = (Vec::new(), Vec::new());
    for v in others {
        // a path that lost our registration (a new nexus) conflicts: try the next one
        let mut done = false;
        for p in lu.paths() {
            match p.preempt(key, v, t, deadline) {
                Ok(()) => {
                    done = true;
                    break;
                }
                Err(e) if e.is_conflict() => {}
                Err(e) => warn!(
                    "{name}: path {}: removing key {}: {e}",
                    p.label(),
                    fmt_key(v)
                ),
            }
        }
        if done {
            warn!(
                "{name}: key {} was registered on the disk this node holds (another node challenging it — it stopped hearing this node — or a registration left behind): removed; this node keeps the disk",
                fmt_key(v)
            );
            removed.push(v);
        } else {
            left.push(v);
        }
    }
    Ok(if left.is_empty() {
        Defense::Removed(removed)
    } else {
        Defense::Unsettled(left)
    })
}
