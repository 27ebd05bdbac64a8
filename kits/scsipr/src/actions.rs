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
pub mod challenge;
pub mod check;
pub mod classify;
pub mod defend;
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
        if ctx.ocf {
            state::forget_ocf(ctx.tag.as_str());
        }
    }
    let s = Settings::from_ctx(ctx)?;
    if ctx.action == Action::Restore {
        s.check_timeout(ctx)?;
    }
    let deadline = ctx.deadline.instant();
    if ctx.action == Action::Remove {
        return remove(ctx, &s, deadline);
    }
    let resolved = resolve_all(&s.devices)?;
    let create = ctx.action == Action::Restore;
    let tag = ctx.tag.as_str();
    let Some(key) = s.key(create)? else {
        return match ctx.action {
            Action::Remove => Ok("this node has no reservation key yet: nothing to remove".into()),
            _ => Err(no_key(&s)),
        };
    };
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
    if ctx.ocf && create {
        refuse_lost(tag, &known)?;
    }
    let mut next = known.clone();
    let results: Vec<Result<String, Failure>> = match ctx.action {
        Action::Restore => {
            // a restore starts afresh: what this node remembered is replaced, or forgotten
            // when it does not hold the disks at the end
            next = Records::default();
            let challenge = s.arbitrate.then(|| s.challenge_window());
            let done = restore_all(&mut lus, key, s.pr_type, challenge, deadline);
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
        if ctx.ocf {
            state::remember_ocf(tag, &ocf_params(ctx));
        } else if create {
            let d = crate::watch::Defender::look(&state::run_dir());
            if !d.running {
                log::warn!("{}", d.note);
            }
        }
    }
    next.store(tag, &known);
    out
}

/// remove of a resource, disk by disk: a disk that does not answer — or whose name does not
/// exist on this node any more (a LU unmapped from this VM: this node cannot write to it) —
/// never keeps the others registered, and never fails the switchover. A name that exists but
/// is no SCSI disk stays a configuration error (exit 2).
fn remove(ctx: &HookCtx, s: &Settings, deadline: std::time::Instant) -> Outcome {
    let tag = ctx.tag.as_str();
    let Some(key) = s.key(false)? else {
        return Ok("this node has no reservation key yet: nothing to remove".into());
    };
    // every name judged before anything is sent: one that is wrong on every node (not a
    // block device, a partition…) changes nothing
    let resolved: Vec<Result<_, Failure>> = s
        .devices
        .iter()
        .map(|d| resolve_all(std::slice::from_ref(d)))
        .collect();
    if let Some(Err(f)) = resolved.iter().find(|r| {
        r.as_ref()
            .is_err_and(|f| f.hint != lkh_common::Hint::MissingHere)
    }) {
        return Err(f.clone());
    }
    let lus = resolved
        .into_iter()
        .map(|r| {
            let r = r.map_err(|f| {
                Failure::failed(format!(
                    "{}; this node cannot write to a disk it does not see",
                    f.message
                ))
            })?;
            open_resolved(r, false, deadline).and_then(|l| {
                l.into_iter()
                    .next()
                    .ok_or_else(|| Failure::failed("no disk"))
            })
        })
        .collect();
    let out = combine(remove_each(lus, key, s.pr_type, deadline));
    if out.is_ok() {
        // Under Pacemaker a stop is followed by a start on the same node when a monitor
        // failed (a restart in place): that this node lost the disk outlives the stop, so the
        // start cannot take it back. LifeKeeper's remove ends it: its restore comes only where
        // LifeKeeper brings the hierarchy.
        let known = Records::load(tag);
        let kept = if ctx.ocf {
            known.lost_only()
        } else {
            Records::default()
        };
        kept.store(tag, &known);
    }
    out
}

/// Pacemaker's start on a node that lost the disk (a monitor said fenced or taken over since
/// this node last started it): refused, whatever the disk shows now. Pacemaker restarts a
/// failed resource in place, and this node's view of the data is older than the winner's
/// writes; only a restart of the node (its run directory is in tmpfs) lets it start here again.
fn refuse_lost(tag: &str, known: &Records) -> Result<(), Failure> {
    match known.lost_devices().first() {
        None => Ok(()),
        Some(dev) => Err(Failure::fenced(format!(
            "{dev}: this node lost the disk to another node since it last started this resource (a fenced or taken-over verdict): it does not take it back; Pacemaker must run the resource where the disk is held. Restart this node to let it start the resource again (or, once you are sure nothing here still uses data from before, remove {})",
            state::run_dir().path().join(tag).join("paths").display()
        ))),
    }
}

/// The resource's settings that came from Pacemaker's parameters, for `watch`.
fn ocf_params(ctx: &HookCtx) -> Vec<(String, String)> {
    ctx.config
        .settings()
        .iter()
        .filter(|s| s.origin == lkh_common::config::Origin::OcfParameter)
        .map(|s| (s.key.to_owned(), s.value.clone()))
        .collect()
}
