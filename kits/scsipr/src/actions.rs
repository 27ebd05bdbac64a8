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

use lkh_common::{Action, Failure, HookCtx, Outcome};

use crate::settings::{NODE_KEY_FILE, Settings};
use crate::state;
use check::check_lu_seen;
use open::{arbitration_order, lu_identity, open_resolved, order_key, resolve_all};
use outcome::combine;
use prim::dev;
use records::{LuRecord, Records};
use remove::remove_each;
use restore::restore_all;

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
    let resolved = resolve_all(&s.devices)?;
    let create = ctx.action == Action::Restore;
    let tag = ctx.tag.as_str();
    let Some(key) = s.key(create)? else {
        return match ctx.action {
            Action::Remove => Ok("this node has no reservation key yet: nothing to remove".into()),
            _ => Err(no_key(&s)),
        };
    };
    if ctx.action == Action::Remove {
        // disk by disk: one that does not answer never keeps the others registered
        let lus = resolved
            .into_iter()
            .map(|r| {
                open_resolved(vec![r], false, deadline).and_then(|l| {
                    l.into_iter()
                        .next()
                        .ok_or_else(|| Failure::failed("no disk"))
                })
            })
            .collect();
        let out = combine(remove_each(lus, key, s.pr_type, deadline));
        if out.is_ok() {
            records::clear(tag);
        }
        return out;
    }
    let mut lus = open_resolved(resolved, false, deadline)?;
    if create && lus.len() > 1 {
        let keys = lus
            .iter_mut()
            .map(|lu| lu_identity(lu, deadline).map(|id| (dev(lu), order_key(&id))))
            .collect::<Result<Vec<_>, Failure>>()?;
        let keyed = arbitration_order(
            lus.into_iter().zip(keys).collect(),
            |l| l.1.1.clone(),
            |l| l.1.0.clone(),
        )?;
        lus = keyed.into_iter().map(|(lu, _)| lu).collect();
    }
    let known = Records::load(tag);
    let mut next = known.clone();
    let results: Vec<Result<String, Failure>> = match ctx.action {
        Action::Restore => {
            // a restore starts afresh: what this node remembered is replaced, or forgotten
            // when it does not hold the disks at the end
            next = Records::default();
            let done = restore_all(&mut lus, key, s.pr_type, deadline);
            match done {
                Ok(done) => lus
                    .iter()
                    .zip(done)
                    .map(|(lu, (msg, rec))| {
                        next.set(&dev(lu), Some(rec));
                        Ok(msg)
                    })
                    .collect(),
                Err(f) => vec![Err(f)],
            }
        }
        // quickCheck and recover (remove returned above)
        _ => lus
            .iter_mut()
            .map(|lu| {
                let name = dev(lu);
                let mem = known.memory(&name);
                let repair = ctx.action == Action::Recover;
                let (out, seen) = check_lu_seen(lu, key, s.pr_type, repair, mem, deadline);
                next.set(&name, LuRecord::after(known.get(&name), &out, seen));
                out.map(|(msg, _)| msg)
            })
            .collect(),
    };
    let out = combine(results);
    if out.is_ok() && ctx.action != Action::QuickCheck {
        state::mark(tag, true);
    }
    next.store(tag, &known);
    out
}
