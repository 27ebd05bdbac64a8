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

use lkh_common::logging::phase;
use lkh_common::{Action, Failure, HookCtx, Outcome};

use crate::settings::{NODE_KEY_FILE, Settings};
use crate::state;
use check::check_all;
use open::{
    Named, arbitration_order, lu_identity, open_named, open_resolved, order_key, resolution,
    resolve_known,
};
use outcome::combine;
use prim::dev;
use records::{LuRecord, Records};
use remove::remove_each;
use restore::restore_all;
use sg_persist::Lu;
use sg_persist::Resolved;
use sg_persist::exec::join_all;

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
    sg_persist::exec::block_on(hook_async(ctx))
}

async fn hook_async(ctx: &HookCtx) -> Outcome {
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
    let tag = ctx.tag.as_str();
    phase("settings");
    if ctx.action == Action::Remove {
        return remove(ctx, &s, deadline).await;
    }
    let known = match &ctx.run {
        Some(dir) => Records::load_in(dir),
        None => Records::load(tag),
    };
    phase("records loaded");
    let named = resolve_known(&s.devices, &known)?;
    phase("devices resolved");
    let create = ctx.action == Action::Restore;
    let Some(key) = s.key(create)? else {
        return match ctx.action {
            Action::Remove => Ok("this node has no reservation key yet: nothing to remove".into()),
            _ => Err(no_key(&s)),
        };
    };
    let resolved: Vec<(Resolved, bool)> = named
        .iter()
        .map(|n| (n.resolved.clone(), n.known.is_some()))
        .collect();
    let mut opened = open_named(resolved, false, deadline).await;
    phase("disks opened");
    let resolutions: Vec<(String, Option<String>)> = opened
        .iter()
        .zip(&named)
        .filter_map(|(lu, n)| lu.as_ref().ok().map(|lu| (dev(lu), resolution(lu, n))))
        .collect();
    if ctx.action != Action::Restore {
        // quickCheck and recover: every LU at once, one that cannot be opened among them
        let repair = ctx.action == Action::Recover;
        let names: Vec<String> = named
            .iter()
            .map(|n| n.resolved.input.display().to_string())
            .collect();
        let checked = check_all(
            &mut opened,
            &names,
            key,
            s.pr_type,
            repair,
            &known,
            deadline,
        )
        .await;
        phase("checked");
        let mut next = known.clone();
        let results = checked
            .into_iter()
            .map(|(name, out, seen)| {
                next.set(&name, LuRecord::after(known.get(&name), &out, seen));
                out.map(|(msg, _)| msg)
            })
            .collect();
        return finish(ctx, tag, &known, next, resolutions, results);
    }
    let mut lus = opened.into_iter().collect::<Result<Vec<Lu>, Failure>>()?;
    if create && lus.len() > 1 {
        let keys = join_all(lus.iter_mut().map(|lu| async move {
            lu_identity(lu, deadline)
                .await
                .map(|id| (dev(lu), order_key(&id)))
        }))
        .await
        .into_iter()
        .collect::<Result<Vec<_>, Failure>>()?;
        let keyed = arbitration_order(
            lus.into_iter().zip(keys).collect(),
            |l| l.1.1.clone(),
            |l| l.1.0.clone(),
        )?;
        lus = keyed.into_iter().map(|(lu, _)| lu).collect();
    }
    if ctx.ocf && create {
        refuse_lost(tag, &known)?;
    }
    // a restore starts afresh: what this node remembered is replaced, or forgotten when it
    // does not hold the disks at the end
    let mut next = Records::default();
    let challenge = s.arbitrate.then(|| s.challenge_window());
    let results = match restore_all(&mut lus, key, s.pr_type, challenge, deadline).await {
        Ok(done) => lus
            .iter()
            .zip(done)
            .map(|(lu, (msg, rec))| {
                next.set(&dev(lu), Some(rec));
                Ok(msg)
            })
            .collect(),
        Err(f) => vec![Err(f)],
    };
    finish(ctx, tag, &known, next, resolutions, results)
}

/// The end of restore, quickCheck and recover: the records (with how each name resolved)
/// stored, the watch marker set after a success, the answers combined.
fn finish(
    ctx: &HookCtx,
    tag: &str,
    known: &Records,
    mut next: Records,
    resolutions: Vec<(String, Option<String>)>,
    results: Vec<Result<String, Failure>>,
) -> Outcome {
    // what each name resolved to, for the next check to re-validate
    for (name, res) in resolutions {
        if let Some(mut r) = next.get(&name).cloned() {
            r.resolved = res;
            next.set(&name, Some(r));
        }
    }
    let out = combine(results);
    if out.is_ok() && ctx.action != Action::QuickCheck {
        state::mark(tag, true);
        if ctx.ocf {
            state::remember_ocf(tag, &ocf_params(ctx));
        } else if ctx.action == Action::Restore {
            let d = crate::watch::Defender::look(&state::run_dir());
            if !d.running {
                log::warn!("{}", d.note);
            }
        }
    }
    match &ctx.run {
        Some(dir) => next.store_in(dir, known),
        None => next.store(tag, known),
    }
    phase("records stored");
    out
}

/// remove of a resource, disk by disk and all at once: a disk that does not answer — or whose
/// name does not exist on this node any more (a LU unmapped from this VM: this node cannot
/// write to it) — never keeps the others registered, and never fails the switchover. A name
/// that exists but is no SCSI disk stays a configuration error (exit 2).
async fn remove(ctx: &HookCtx, s: &Settings, deadline: std::time::Instant) -> Outcome {
    let tag = ctx.tag.as_str();
    let Some(key) = s.key(false)? else {
        return Ok("this node has no reservation key yet: nothing to remove".into());
    };
    let known = match &ctx.run {
        Some(dir) => Records::load_in(dir),
        None => Records::load(tag),
    };
    phase("records loaded");
    // every name judged before anything is sent: one that is wrong on every node (not a
    // block device, a partition…) changes nothing
    let named: Vec<Result<Named, Failure>> = s
        .devices
        .iter()
        .map(|d| {
            resolve_known(std::slice::from_ref(d), &known).and_then(|n| {
                n.into_iter()
                    .next()
                    .ok_or_else(|| Failure::failed("no disk"))
            })
        })
        .collect();
    phase("devices resolved");
    if let Some(Err(f)) = named.iter().find(|r| {
        r.as_ref()
            .is_err_and(|f| f.hint != lkh_common::Hint::MissingHere)
    }) {
        return Err(f.clone());
    }
    let lus = join_all(named.into_iter().map(|n| async move {
        let n = n.map_err(|f| {
            Failure::failed(format!(
                "{}; this node cannot write to a disk it does not see",
                f.message
            ))
        })?;
        open_resolved(vec![n.resolved], false, deadline)
            .await
            .and_then(|l| {
                l.into_iter()
                    .next()
                    .ok_or_else(|| Failure::failed("no disk"))
            })
    }))
    .await;
    let out = combine(remove_each(lus, key, s.pr_type, deadline).await);
    if out.is_ok() {
        // Under Pacemaker a stop is followed by a start on the same node when a monitor
        // failed (a restart in place): that this node lost the disk outlives the stop, so the
        // start cannot take it back. LifeKeeper's remove ends it: its restore comes only where
        // LifeKeeper brings the hierarchy.
        let kept = if ctx.ocf {
            known.lost_only()
        } else {
            Records::default()
        };
        match &ctx.run {
            Some(dir) => kept.store_in(dir, &known),
            None => kept.store(tag, &known),
        }
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
