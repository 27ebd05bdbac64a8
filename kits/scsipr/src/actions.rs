//! The four LifeKeeper actions on persistent reservations, per logical unit, and their
//! composition over all configured devices ([`hook`]). The policy runs over the
//! [`Disk`](crate::pr::Disk)/[`Nexus`](crate::pr::Nexus) traits: `sg-persist`'s real paths in
//! production, an in-memory SPC-4 LU in the unit tests.
//!
//! Policy, in one place (each module says how and why):
//! - restore is a compare-and-swap on the reservation holder ([`restore`]): it observes the
//!   holder, registers on every path, then reserves when nobody holds or preempts exactly the
//!   holder it observed; a holder gone or replaced meanwhile means another node won (exit 3).
//!   Any failure rolls this node's registrations back. Several disks are taken in one order
//!   on every node, the first loss stops it and the disks already taken are given back.
//! - remove releases and unregisters this node's key on every path, never another node's
//!   ([`remove`]).
//! - quickCheck is PR IN only while healthy ([`check`], from the one assessment, [`assess`]):
//!   another holder or our key gone → fenced (exit 3); the LU lost its PR state → exit 1;
//!   nobody holds → exit 1. A path that lost its registration is re-registered, judged right
//!   before and right after ([`repair`]); this node's records of its verified checks
//!   ([`records`]) tell when no path can have lost it.
//! - recover: as quickCheck, and takes the reservation again when nobody holds, or when the
//!   LU lost its PR state and our records say this node held it.
//!
//! The other modules: [`open`] (resolving and opening the disks, their arbitration order),
//! [`prim`] (the PR commands on one LU), [`classify`] (what a state means for this node),
//! [`outcome`] (failures and how several LUs' answers combine).

pub mod assess;
pub mod check;
pub mod classify;
pub mod open;
pub mod outcome;
pub mod prim;
pub mod records;
pub mod remove;
pub mod repair;
pub mod restore;

use std::collections::BTreeMap;

use lkh_common::{Action, Exit, Failure, HookCtx, Outcome};

use crate::settings::{NODE_KEY_FILE, Settings};
use crate::state;
use check::check_lu;
use open::{arbitration_order, open_resolved, resolve_all, wwid};
use outcome::combine;
use prim::dev;
use records::Records;
use remove::{remove_lu, unreachable_on_remove};
use restore::{restore_all, restore_lu};

/// quickCheck's answer on a node without a reservation key (`status -t TAG` gives the same).
pub fn no_key(s: &Settings) -> Failure {
    Failure::failed(format!(
        "this node has no reservation key ({}): restore was never run here",
        s.conf_dir.join(NODE_KEY_FILE).display()
    ))
    .not_running()
}

/// The hook: restore / remove / quickCheck / recover of one resource.
pub fn hook(ctx: &HookCtx) -> Outcome {
    if ctx.action == Action::Remove {
        // first, so that `watch` (which judges under the same tag lock) stops judging it
        state::mark(ctx.tag.as_str(), false);
    }
    let s = Settings::from_ctx(ctx)?;
    let deadline = ctx.deadline.instant();
    let mut resolved = resolve_all(&s.devices)?;
    let create = ctx.action == Action::Restore;
    let tag = ctx.tag.as_str();
    let Some(key) = s.key(create)? else {
        return match ctx.action {
            Action::Remove => Ok("this node has no reservation key yet: nothing to remove".into()),
            _ => Err(no_key(&s)),
        };
    };
    let create_order = create && resolved.len() > 1;
    if create_order {
        arbitration_order(&mut resolved, wwid);
    }
    let mut lus = match open_resolved(resolved, false, deadline) {
        Err(f) if ctx.action == Action::Remove && f.exit == Exit::Failed => {
            records::clear(tag);
            return Ok(unreachable_on_remove(&f));
        }
        other => other?,
    };
    let known = match ctx.action {
        Action::QuickCheck | Action::Recover => Records::load(tag),
        _ => Records::default(),
    };
    let mut next = BTreeMap::new();
    let results: Vec<Result<String, Failure>> = if create_order {
        match restore_all(&mut lus, key, s.pr_type, deadline) {
            Ok(done) => lus
                .iter()
                .zip(done)
                .map(|(lu, (msg, rec))| {
                    next.insert(dev(lu), rec);
                    Ok(msg)
                })
                .collect(),
            Err(f) => vec![Err(f)],
        }
    } else {
        lus.iter_mut()
            .map(|lu| {
                let name = dev(lu);
                let mem = known.memory(&name);
                let done = match ctx.action {
                    Action::Restore => restore_lu(lu, key, s.pr_type, deadline),
                    Action::Remove => return remove_lu(lu, key, s.pr_type, deadline),
                    Action::QuickCheck => check_lu(lu, key, s.pr_type, false, mem, deadline),
                    Action::Recover => check_lu(lu, key, s.pr_type, true, mem, deadline),
                };
                done.map(|(msg, rec)| {
                    next.insert(name, rec);
                    msg
                })
            })
            .collect()
    };
    let out = combine(results);
    match (ctx.action, &out) {
        (Action::Remove, Ok(_)) => records::clear(tag),
        (_, Ok(_)) => {
            if ctx.action != Action::QuickCheck {
                state::mark(tag, true);
            }
            if known.0.as_ref() != Some(&next) {
                records::save(tag, &next);
            }
        }
        (_, Err(f)) if f.exit == Exit::Fenced => records::clear(tag),
        _ => {}
    }
    out
}
