//! The four LifeKeeper actions on persistent reservations, per logical unit, and their
//! composition over all configured devices.
//!
//! Policy, in one place:
//! - restore: register on every path (REGISTER AND IGNORE EXISTING KEY), reserve; if another
//!   key holds, PREEMPT AND ABORT it (and every other registrant, so no fenced node keeps
//!   write access under a registrants-only type); then read back keys and reservation.
//!   Under a single-holder type a reservation already ours through a nexus that is none of
//!   our live paths (the old WWPN after a flip) is moved to a live one.
//! - remove: RELEASE through every path (a non-holder path answers GOOD), unregister every
//!   path; only this node's registrations are touched.
//! - quickCheck: another holder, or our key gone from the LU → fenced (exit 3); nobody holds
//!   → failed (exit 1, recover re-takes it); then each path is probed with REGISTER(key, key),
//!   which succeeds only on a nexus registered with our key; a path that lost its registration
//!   (new nexus after a WWPN flip, a path that came back) is re-registered with a warning,
//!   after judging the state again (a takeover meanwhile looks the same, and is fenced).
//!   Under a single-holder type the reservation is moved to a live nexus when none of our
//!   paths holds it.
//! - recover: as quickCheck, and reserve again only when nobody holds the reservation.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lkh_common::{Exit, Failure, HookCtx, Outcome};
use log::{info, warn};
use sg_persist::{Error, Lu, Options, PrType, Reservation, Resolved, SysRoot};

use crate::settings::{Settings, fmt_key};
use crate::state;

/// Upper bound of one SCSI command (kept well under the action's TIMEOUT).
pub const CMD_TIMEOUT: Duration = Duration::from_secs(5);

/// Library options for a given deadline budget.
pub fn options(budget: Duration) -> Options {
    Options {
        cmd_timeout: CMD_TIMEOUT.min(budget / 2).max(Duration::from_millis(500)),
        identify_single: false,
        ..Options::default()
    }
}

/// Maps a library error to a failure naming the device and saying what to do.
pub fn failure(e: &Error) -> Failure {
    if e.is_bad_input() {
        return Failure::usage(format!("{e}"));
    }
    if e.is_no_sg_node() {
        return Failure::failed(e.to_string());
    }
    if e.is_unsupported() {
        return Failure::failed(format!(
            "{e}: the disk does not support SCSI-3 persistent reservations; run `lkh-scsipr doctor DEVICE` for the cause"
        ));
    }
    Failure::failed(format!(
        "{e}; check the disk's paths (`lkh-scsipr status DEVICE`)"
    ))
}

/// Resolves every device name through sysfs; a wrong one is a usage error (exit 2).
fn resolve_all(devices: &[PathBuf]) -> Result<Vec<Resolved>, Failure> {
    let root = SysRoot::default();
    devices
        .iter()
        .map(|d| {
            sg_persist::path::resolve(d, &root).map_err(|e| {
                let f = Failure::usage(e.to_string());
                // a name this node does not have at all, as opposed to a wrong kind of device
                if std::fs::symlink_metadata(d).is_err() {
                    f.missing_here()
                } else {
                    f
                }
            })
        })
        .collect()
}

/// Resolves every device name first (nothing is sent to any disk when one is wrong), then
/// opens each LU and confirms its paths are one LU.
/// `identify`: read VPD 0x83 of single-path devices too (for display).
pub fn open_all(
    devices: &[PathBuf],
    identify: bool,
    deadline: Instant,
) -> Result<Vec<Lu>, Failure> {
    open_resolved(resolve_all(devices)?, identify, deadline)
}

/// Opens each resolved LU and confirms its paths are one LU (see [`open_all`]).
fn open_resolved(
    resolved: Vec<Resolved>,
    identify: bool,
    deadline: Instant,
) -> Result<Vec<Lu>, Failure> {
    let budget = deadline.saturating_duration_since(Instant::now());
    let mut lus = Vec::new();
    for r in resolved {
        let opts = Options {
            identify_single: identify,
            ..options(budget)
        };
        let lu = Lu::open_resolved(r, opts, deadline).map_err(|e| failure(&e))?;
        for d in &lu.dead {
            warn!(
                "{}: path {} does not answer ({}); continuing on {} other path(s)",
                lu.input().display(),
                d.info.name,
                d.error,
                lu.paths.len()
            );
        }
        lus.push(lu);
    }
    Ok(lus)
}

fn holds(r: &Reservation, key: u64, registered: bool) -> bool {
    match r.pr_type() {
        Some(t) if t.all_registrants() => registered,
        _ => r.key == key,
    }
}

pub(crate) fn dev(lu: &Lu) -> String {
    lu.input().display().to_string()
}

pub(crate) fn describe(r: &Reservation) -> String {
    format!(
        "key {} ({})",
        fmt_key(r.key),
        PrType::code_name(r.type_code)
    )
}

/// REGISTER AND IGNORE EXISTING KEY on every path; returns how many succeeded.
pub(crate) fn register_all(lu: &mut Lu, key: u64, deadline: Instant) -> Result<usize, Failure> {
    let name = dev(lu);
    let mut ok = 0;
    let mut last = None;
    for p in &mut lu.paths {
        match p.register_ignore(key, deadline) {
            Ok(()) => ok += 1,
            Err(e) => {
                warn!("{name}: path {}: {e}", p.info.name);
                last = Some(e);
            }
        }
    }
    match (ok, last) {
        (0, Some(e)) => Err(failure(&e)),
        (n, _) => Ok(n),
    }
}

/// Probes each path with REGISTER(key, key) and re-registers the ones that lost our key.
/// Returns (paths answering, paths re-registered).
///
/// A takeover by another node since the caller's [`judge`] also makes REGISTER(key, key)
/// conflict, on every path: the state is judged again before the first re-registration, so
/// that a fenced node reports exit 3 instead of registering itself back under the new holder.
fn probe_paths(
    lu: &mut Lu,
    key: u64,
    t: PrType,
    deadline: Instant,
) -> Result<(usize, usize), Failure> {
    let name = dev(lu);
    let (mut alive, mut fixed) = (0, 0);
    let mut last = None;
    let mut rejudged = false;
    for i in 0..lu.paths.len() {
        let probe = lu.paths[i].register(key, key, deadline);
        if !rejudged && probe.as_ref().is_err_and(Error::is_conflict) {
            judge(lu, key, t, deadline)?;
            rejudged = true;
        }
        let p = &mut lu.paths[i];
        match probe {
            Ok(()) => alive += 1,
            Err(e) if e.is_conflict() => match p.register_ignore(key, deadline) {
                Ok(()) => {
                    warn!(
                        "{name}: path {} ({}) was not registered with {} (a new I_T nexus, e.g. after a virtual FC WWPN flip, or a path that came back): re-registered",
                        p.info.name,
                        p.info.hctl.as_deref().unwrap_or("?"),
                        fmt_key(key)
                    );
                    alive += 1;
                    fixed += 1;
                }
                Err(e) => {
                    warn!("{name}: path {}: re-registering failed: {e}", p.info.name);
                    last = Some(e);
                }
            },
            Err(e) => {
                warn!("{name}: path {} does not answer: {e}", p.info.name);
                last = Some(e);
            }
        }
    }
    if alive == 0 {
        return Err(match last {
            Some(e) => Failure::failed(format!(
                "{name}: no path answers ({e}); the LU is unreachable from this node"
            )),
            None => Failure::failed(format!("{name}: no usable path")),
        });
    }
    Ok((alive, fixed))
}

/// READ KEYS through the first answering path: one key per registered I_T nexus.
pub(crate) fn read_keys(lu: &mut Lu, deadline: Instant) -> Result<Vec<u64>, Failure> {
    lu.any_path(|p| p.read_keys(deadline))
        .map(|k| k.keys)
        .map_err(|e| failure(&e))
}

/// READ RESERVATION through the first answering path.
pub(crate) fn read_reservation(
    lu: &mut Lu,
    deadline: Instant,
) -> Result<Option<Reservation>, Failure> {
    lu.any_path(|p| p.read_reservation(deadline))
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
pub fn shared_key_warning(lu: &Lu, key: u64, registrations: usize) -> Option<String> {
    let paths = lu.paths.len() + lu.dead.len();
    (registrations > paths).then(|| {
        format!(
            "{}: this node's key {} is registered {registrations} times but this node has {paths} path(s) to the disk: if another node uses the same key (a copied KEY= or node.key), fencing between the two does not work: give every node its own key; otherwise these are stale registrations of this node's earlier initiator ports (after a WWPN or initiator name change), which `lkh-scsipr status` lists with their initiators",
            dev(lu),
            fmt_key(key)
        )
    })
}

/// RELEASE of the reservation of type `code` that `key` holds, through every path: the holding
/// nexus releases it, the others answer GOOD (registered) or RESERVATION CONFLICT. A type code
/// outside the six defined ones cannot be named in a RELEASE: nothing is sent then.
fn release_all(lu: &mut Lu, key: u64, code: u8, deadline: Instant) {
    let Some(t) = PrType::from_code(code) else {
        return;
    };
    let name = dev(lu);
    for p in &mut lu.paths {
        match p.release(key, t, deadline) {
            Ok(()) => {}
            Err(e) if e.is_conflict() => {}
            Err(e) => warn!("{name}: path {}: {e}", p.info.name),
        }
    }
}

/// Reads keys and reservation; returns (reservation, how often our key is registered, keys).
fn read_state(
    lu: &mut Lu,
    key: u64,
    deadline: Instant,
) -> Result<(Option<Reservation>, usize, Vec<u64>), Failure> {
    let keys = read_keys(lu, deadline)?;
    let res = read_reservation(lu, deadline)?;
    Ok((res, count(&keys, key), keys))
}

/// The check shared by quickCheck, recover and watch: fenced / failed / ours.
pub enum Held {
    /// We hold it with the configured type.
    Ours,
    /// Nobody holds it; our key is registered.
    Free,
    /// We hold it with another type.
    WrongType(u8),
}

/// Classifies the LU's reservation state from this node's point of view; fenced is an error
/// with exit 3.
pub fn judge(lu: &mut Lu, key: u64, t: PrType, deadline: Instant) -> Result<Held, Failure> {
    let name = dev(lu);
    let res = read_reservation(lu, deadline)?;
    // Holding a non-all-registrants reservation implies our key is registered: the keys need
    // reading only when the holder is not plainly us.
    let plainly_ours =
        res.is_some_and(|r| r.key == key && !r.pr_type().is_some_and(|t| t.all_registrants()));
    let registered = plainly_ours || read_keys(lu, deadline)?.contains(&key);
    match res {
        Some(r) if !holds(&r, key, registered) => Err(Failure::fenced(format!(
            "{name}: the reservation is held by another node ({}), not by this node's key {}: this node is fenced and must not write; let LifeKeeper fail over",
            describe(&r),
            fmt_key(key)
        ))),
        _ if !registered => Err(Failure::fenced(format!(
            "{name}: this node's key {} is no longer registered (another node preempted it): this node is fenced; let LifeKeeper fail over",
            fmt_key(key)
        ))),
        None => Ok(Held::Free),
        Some(r) if r.type_code != t.code() => Ok(Held::WrongType(r.type_code)),
        Some(_) => Ok(Held::Ours),
    }
}

/// restore on one LU.
pub fn restore_lu(lu: &mut Lu, key: u64, t: PrType, deadline: Instant) -> Result<String, Failure> {
    let name = dev(lu);
    let registered = register_all(lu, key, deadline)?;
    let mut preempted = Vec::new();
    for round in 0..3 {
        let (res, ours, keys) = read_state(lu, key, deadline)?;
        if round == 0
            && let Some(w) = shared_key_warning(lu, key, ours)
        {
            warn!("{w}");
        }
        match res {
            None => match lu.any_path(|p| p.reserve(key, t, deadline)) {
                Ok(()) => {
                    info!("{name}: reserved with {} ({t})", fmt_key(key));
                    break;
                }
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(failure(&e)),
            },
            Some(r) => {
                let ours_held = holds(&r, key, ours > 0);
                if ours_held && r.type_code != t.code() {
                    release_all(lu, key, r.type_code, deadline);
                    continue;
                }
                // Under an all-registrants type every registrant holds: fencing the others
                // means removing their registrations, even though we "hold" too.
                let all_reg = r.pr_type().is_some_and(|x| x.all_registrants());
                if ours_held && !all_reg {
                    break;
                }
                let mut victims: Vec<u64> = Vec::new();
                if !ours_held && r.key != 0 {
                    victims.push(r.key);
                }
                for k in keys {
                    if k != key && k != 0 && !victims.contains(&k) {
                        victims.push(k);
                    }
                }
                if victims.is_empty() {
                    break;
                }
                for v in victims {
                    match lu.any_path(|p| p.preempt_abort(key, v, t, deadline)) {
                        Ok(()) => {
                            info!(
                                "{name}: preempted and aborted key {} (previous {})",
                                fmt_key(v),
                                describe(&r)
                            );
                            preempted.push(v);
                        }
                        Err(e) if e.is_conflict() => {
                            return Err(Failure::fenced(format!(
                                "{name}: preempting {} was refused with RESERVATION CONFLICT: this node's own registration was removed meanwhile by another node",
                                fmt_key(v)
                            )));
                        }
                        Err(e) => return Err(failure(&e)),
                    }
                }
            }
        }
    }
    // Paths that were registered above but are refused now were preempted by a racing node.
    match judge(lu, key, t, deadline)? {
        // Already ours, through a nexus that may be gone (restore after a WWPN flip).
        Held::Ours if single_holder_type(t) && !held_on_live_path(lu, key, t, deadline) => {
            move_to_live_nexus(lu, key, t, deadline)?
        }
        Held::Ours => {}
        Held::Free => {
            return Err(Failure::failed(format!(
                "{name}: the reservation could not be taken (nobody holds it after 3 attempts); try restore again"
            )));
        }
        Held::WrongType(c) => {
            return Err(Failure::failed(format!(
                "{name}: held with type {} instead of {t} after 3 attempts: check that TYPE is the same on every node, then run restore again",
                PrType::code_name(c)
            )));
        }
    }
    let ours = count(&read_keys(lu, deadline)?, key);
    if ours < registered {
        return Err(Failure::failed(format!(
            "{name}: only {ours} of {registered} paths show key {} after registering (a path dropped its registration, or another node preempted this one): see `lkh-scsipr status DEVICE`, then run restore again",
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

/// remove on one LU: release, unregister every path; verify our key is gone.
pub fn remove_lu(lu: &mut Lu, key: u64, t: PrType, deadline: Instant) -> Result<String, Failure> {
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
        && !r.pr_type().is_some_and(|t| t.all_registrants())
    {
        release_all(lu, key, r.type_code, deadline);
    }
    for p in &mut lu.paths {
        if let Err(e) = p.register_ignore(0, deadline) {
            warn!("{name}: path {}: unregistering failed: {e}", p.info.name);
        }
    }
    let (mut res, mut ours, _) = read_state(lu, key, deadline)?;
    if ours > 0 {
        // Our key on nexuses we cannot reach (old WWPNs after a flip, a dead path): register
        // one live path again and PREEMPT our own key, which removes every other registration
        // carrying it (never another node's), then unregister that path too.
        let stale = ours;
        if let Some(p) = lu.paths.first_mut() {
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

/// quickCheck (repair = false: only re-registers paths) and recover (repair = true: also
/// re-takes a reservation nobody holds, or fixes its type).
pub fn check_lu(
    lu: &mut Lu,
    key: u64,
    t: PrType,
    repair: bool,
    deadline: Instant,
) -> Result<String, Failure> {
    let name = dev(lu);
    let held = judge(lu, key, t, deadline)?;
    let (alive, fixed) = probe_paths(lu, key, t, deadline)?;
    match held {
        Held::Ours if single_holder_type(t) && !held_on_live_path(lu, key, t, deadline) => {
            move_to_live_nexus(lu, key, t, deadline)?
        }
        Held::Ours => {}
        Held::Free if repair => {
            match lu.any_path(|p| p.reserve(key, t, deadline)) {
                Ok(()) => info!(
                    "{name}: nobody held the reservation: taken again with {}",
                    fmt_key(key)
                ),
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(failure(&e)),
            }
            judge_ours(lu, key, t, deadline)?;
        }
        Held::Free => {
            return Err(Failure::failed(format!(
                "{name}: nobody holds the reservation (this node's key {} is still registered): recover will take it again",
                fmt_key(key)
            )));
        }
        Held::WrongType(c) if repair => {
            release_all(lu, key, c, deadline);
            lu.any_path(|p| p.reserve(key, t, deadline))
                .map_err(|e| failure(&e))?;
            judge_ours(lu, key, t, deadline)?;
        }
        Held::WrongType(c) => {
            return Err(Failure::failed(format!(
                "{name}: this node holds the reservation with type {} but TYPE is {t}: recover will re-take it with {t}",
                PrType::code_name(c)
            )));
        }
    }
    let total = lu.paths.len() + lu.dead.len();
    let mut s = format!(
        "{name}: reserved by {} ({t}), {alive}/{total} path(s) registered",
        fmt_key(key)
    );
    if fixed > 0 {
        s += &format!(", {fixed} re-registered");
    }
    Ok(s)
}

/// Types under which only the one holding I_T nexus may write (or access).
fn single_holder_type(t: PrType) -> bool {
    matches!(t, PrType::WriteExclusive | PrType::ExclusiveAccess)
}

/// Under WRITE EXCLUSIVE / EXCLUSIVE ACCESS, whether the nexus holding our key's reservation is
/// one of our live paths: RESERVE of the held type is a no-op answered GOOD by the holder and
/// RESERVATION CONFLICT by every other nexus, our own included. Stops at the first GOOD.
fn held_on_live_path(lu: &mut Lu, key: u64, t: PrType, deadline: Instant) -> bool {
    lu.paths
        .iter_mut()
        .any(|p| p.reserve(key, t, deadline).is_ok())
}

/// Our key holds the reservation through a nexus that no longer exists (the old WWPN after a
/// flip): under WRITE EXCLUSIVE / EXCLUSIVE ACCESS none of our paths could write then. PREEMPT
/// with our own key moves the reservation to a live nexus and drops every registration of our
/// key elsewhere (stale nexuses included); the other live paths are registered again at once.
/// Non-holder paths cannot write under these types anyway, so the short gap costs nothing.
fn move_to_live_nexus(lu: &mut Lu, key: u64, t: PrType, deadline: Instant) -> Result<(), Failure> {
    let name = dev(lu);
    let Some((first, rest)) = lu.paths.split_first_mut() else {
        return Ok(());
    };
    first
        .preempt(key, key, t, deadline)
        .map_err(|e| failure(&e))?;
    for p in rest {
        if let Err(e) = p.register_ignore(key, deadline) {
            warn!(
                "{name}: path {}: re-registering after the move failed: {e}",
                p.info.name
            );
        }
    }
    info!(
        "{name}: reservation ({t}) moved to path {} after its nexus changed",
        first.info.name
    );
    judge_ours(lu, key, t, deadline)
}

fn judge_ours(lu: &mut Lu, key: u64, t: PrType, deadline: Instant) -> Result<(), Failure> {
    match judge(lu, key, t, deadline)? {
        Held::Ours => Ok(()),
        _ => Err(Failure::failed(format!(
            "{}: the reservation could not be taken back: `lkh-scsipr status DEVICE` shows who holds it and with which type",
            dev(lu)
        ))),
    }
}

/// Worst exit wins: fenced over failed over usage; messages joined.
pub(crate) fn combine(results: Vec<Result<String, Failure>>) -> Outcome {
    let mut ok = Vec::new();
    let mut worst: Option<Failure> = None;
    let rank = |e: Exit| match e {
        Exit::Fenced => 3,
        Exit::Failed => 2,
        Exit::Usage => 1,
        Exit::Ok => 0,
    };
    for r in results {
        match r {
            Ok(s) => ok.push(s),
            Err(f) => {
                worst = Some(match worst {
                    None => f,
                    Some(w) => {
                        let exit = if rank(f.exit) > rank(w.exit) {
                            f.exit
                        } else {
                            w.exit
                        };
                        Failure::new(exit, format!("{w}; {f}"))
                    }
                });
            }
        }
    }
    match worst {
        Some(f) => Err(f),
        None => Ok(ok.join("; ")),
    }
}

/// remove on a disk this node cannot reach: nothing can be released from here, and the next
/// holder's restore preempts this node's key anyway, so the switchover must not be blocked.
fn unreachable_on_remove(f: &Failure) -> String {
    warn!("{f}");
    "the disk does not answer from this node: nothing released here; the next node's restore preempts this node's key".into()
}

/// The hook: restore / remove / quickCheck / recover of one resource.
pub fn hook(ctx: &HookCtx) -> Outcome {
    use lkh_common::Action;
    if ctx.action == Action::Remove {
        // first, so that `watch` (which judges under the same tag lock) stops judging it
        state::mark(ctx.tag.as_str(), false);
    }
    let s = Settings::from_ctx(ctx)?;
    let deadline = ctx.deadline.instant();
    let resolved = resolve_all(&s.devices)?;
    let create = ctx.action == Action::Restore;
    let Some(key) = s.key(create)? else {
        return match ctx.action {
            Action::Remove => Ok("this node has no reservation key yet: nothing to remove".into()),
            _ => Err(Failure::failed(format!(
                "this node has no reservation key ({}): restore was never run here",
                s.conf_dir.join(crate::settings::NODE_KEY_FILE).display()
            ))
            .not_running()),
        };
    };
    let mut lus = match open_resolved(resolved, false, deadline) {
        Err(f) if ctx.action == Action::Remove && f.exit == Exit::Failed => {
            return Ok(unreachable_on_remove(&f));
        }
        other => other?,
    };
    let results: Vec<Result<String, Failure>> = lus
        .iter_mut()
        .map(|lu| match ctx.action {
            Action::Restore => restore_lu(lu, key, s.pr_type, deadline),
            Action::Remove => remove_lu(lu, key, s.pr_type, deadline),
            Action::QuickCheck => check_lu(lu, key, s.pr_type, false, deadline),
            Action::Recover => check_lu(lu, key, s.pr_type, true, deadline),
        })
        .collect();
    let out = combine(results);
    if matches!(ctx.action, Action::Restore | Action::Recover) && out.is_ok() {
        state::mark(ctx.tag.as_str(), true);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(key: u64, t: u8) -> Reservation {
        Reservation {
            key,
            scope: 0,
            type_code: t,
        }
    }

    #[test]
    fn holder_rules() {
        assert!(holds(&res(7, 5), 7, true));
        assert!(!holds(&res(8, 5), 7, true));
        // All-registrants types report key 0: registration is what makes us a holder.
        assert!(holds(&res(0, 7), 7, true));
        assert!(!holds(&res(0, 8), 7, false));
    }

    #[test]
    fn worst_exit_wins() {
        let r = combine(vec![
            Ok("a".into()),
            Err(Failure::failed("b")),
            Err(Failure::fenced("c")),
            Err(Failure::usage("d")),
        ]);
        let f = r.unwrap_err();
        assert_eq!(f.exit, Exit::Fenced);
        assert!(f.message.contains('b') && f.message.contains('c') && f.message.contains('d'));
        assert_eq!(
            combine(vec![Ok("x".into()), Ok("y".into())]).unwrap(),
            "x; y"
        );
    }

    #[test]
    fn command_timeout_stays_under_budget() {
        assert_eq!(options(Duration::from_secs(20)).cmd_timeout, CMD_TIMEOUT);
        assert_eq!(
            options(Duration::from_secs(4)).cmd_timeout,
            Duration::from_secs(2)
        );
        assert!(!options(Duration::from_secs(4)).identify_single);
    }
}
