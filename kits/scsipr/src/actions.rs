//! The four LifeKeeper actions on persistent reservations, per logical unit, and their
//! composition over all configured devices. The policy runs over the [`Disk`]/[`Nexus`]
//! traits: `sg-persist`'s real paths in production, an in-memory SPC-4 LU in the unit tests.
//!
//! The one assessment of a resource is [`assess`] ([`assess_lu`] per LU): READ KEYS and READ
//! RESERVATION only, classified from this node's point of view ([`Held`], [`Fence`]), each
//! path's registration as far as it is known without a PR OUT ([`PathReg`]), returned as a
//! [`Health`] value whose [`Health::outcome`] is quickCheck's message and exit code. quickCheck
//! and recover start from it ([`check_lu`]: a healthy LU is answered from that look alone; a
//! repair is followed by a second look), `status -t TAG` renders it, and `watch` judges by it,
//! so the three cannot disagree about a disk.
//!
//! Policy, in one place:
//! - restore is a compare-and-swap on the reservation holder. It first reads the reservation
//!   (the holder it *observed*), then registers on every path (REGISTER AND IGNORE EXISTING
//!   KEY), then: nobody holds → RESERVE, and a RESERVE that conflicts means another node
//!   reserved first: this restore lost. The observed holder still holds → PREEMPT AND ABORT
//!   of exactly that key; if the key is gone (another node preempted it) or another key holds
//!   now, this restore lost to a live winner and never preempts it. Having won, it preempts
//!   every other registrant (no fenced node keeps write access under a registrants-only
//!   type); under an all-registrants type every registrant is a holder, so the preempts of
//!   each other's keys decide (a preempted node's own PREEMPT conflicts): one survives. Then
//!   it reads keys and reservation back, and exits 0 only if this node holds then. Under a
//!   single-holder type a reservation already ours through a nexus that is none of our live
//!   paths (the old WWPN after a flip) is moved to a live one.
//! - Any failure of restore after it registered — a lost race (exit 3), a timeout, a refusal —
//!   rolls its registrations back (as remove does) and reports what the disk shows then; a
//!   disk held by another node makes it exit 3, whatever went wrong first.
//! - A resource of several disks is taken in one order on every node (by the LU's
//!   world-wide name, [`arbitration_order`]), stopping at the first disk lost: two nodes restoring at once
//!   meet on the same first disk and the loser never touches the others. Every disk is
//!   observed before anything is sent, so each compare-and-swap is against the holder seen
//!   at the start (a racer that won a later disk meanwhile is not an old holder). Having taken all,
//!   restore judges the earlier disks once more; a failure on any disk gives back the disks
//!   this restore took ([`restore_all`]), so no restore that fails leaves a disk held.
//! - PREEMPT AND ABORT refused as unsupported (ILLEGAL REQUEST, invalid field in CDB: tgt) →
//!   PREEMPT with a warning: the same compare-and-swap, without aborting the victim's queue.
//! - remove: RELEASE through every path (a non-holder path answers GOOD), unregister every
//!   path; only this node's registrations are touched.
//! - quickCheck: reads the reservation and the keys (PR IN only). Another holder, or our key
//!   gone while others are registered → fenced (exit 3); no reservation and no registration
//!   at all → the LU lost its PR state (a target restarted without persist-through-power-loss,
//!   or PR OUT CLEAR): exit 1, not fenced; nobody holds → exit 1 (recover re-takes it). Path
//!   registrations: the live paths' nexus identities and how often our key is registered are
//!   remembered after every verified check (`<run dir>/scsipr/<TAG>/paths`); while both are
//!   unchanged no path can have lost its registration (registrations change only by PR OUT,
//!   and a PREEMPT or CLEAR removes every registration of a key at once), so a healthy check
//!   sends no PR OUT. Otherwise each path is probed with REGISTER(key, key); a path that lost
//!   its registration is re-registered only after judging the state again right before, and
//!   judged once more right after: a takeover meanwhile removes what was just added → exit 3.
//! - recover: as quickCheck, and reserve again when nobody holds; after a PR state loss it
//!   registers and reserves again (the same compare-and-swap as restore) when our records say
//!   this node held the disk.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lkh_common::{Exit, Failure, HookCtx, Outcome};
use log::{info, warn};
use sg_persist::{Error, Lu, Options, PrType, Reservation, Resolved, SysRoot};

use crate::pr::{Disk, Nexus};

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
pub fn resolve_all(devices: &[PathBuf]) -> Result<Vec<Resolved>, Failure> {
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
pub fn open_resolved(
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

fn all_reg(r: &Reservation) -> bool {
    r.pr_type().is_some_and(|t| t.all_registrants())
}

pub(crate) fn dev<D: Disk>(lu: &D) -> String {
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
pub(crate) fn register_all<D: Disk>(
    lu: &mut D,
    key: u64,
    deadline: Instant,
) -> Result<usize, Failure> {
    let name = dev(lu);
    let mut ok = 0;
    let mut last = None;
    for p in lu.paths() {
        match p.register_ignore(key, deadline) {
            Ok(()) => ok += 1,
            Err(e) => {
                warn!("{name}: path {}: {e}", p.label());
                last = Some(e);
            }
        }
    }
    match (ok, last) {
        (0, Some(e)) => Err(failure(&e)),
        (n, _) => Ok(n),
    }
}

/// PREEMPT AND ABORT of `victim`; when the target refuses that service action as unsupported
/// (tgt), PREEMPT, with a warning the first time (`plain` remembers it for this LU). Both are
/// the same compare-and-swap: they succeed only while `victim` is registered and this nexus
/// is registered with `key`.
pub(crate) fn preempt<D: Disk>(
    lu: &mut D,
    key: u64,
    victim: u64,
    t: PrType,
    plain: &mut bool,
    deadline: Instant,
) -> Result<(), Error> {
    if !*plain {
        match lu.any_path(|p| p.preempt_abort(key, victim, t, deadline)) {
            Err(e) if e.is_unsupported() => {
                warn!(
                    "{}: the target refuses PREEMPT AND ABORT ({e}), which SPC-3 and SPC-4 define: using PREEMPT instead; the target does not abort the preempted node's queued commands (they still get RESERVATION CONFLICT when they run)",
                    dev(lu)
                );
                *plain = true;
            }
            other => return other,
        }
    }
    lu.any_path(|p| p.preempt(key, victim, t, deadline))
}

/// Reads the reservation and the keys again: anything but fenced or a lost PR state lets a
/// re-registration go on.
fn rejudge<D: Disk>(lu: &mut D, key: u64, t: PrType, deadline: Instant) -> Result<(), Failure> {
    match judge(lu, key, t, deadline)? {
        Held::Lost => Err(Failure::failed(format!(
            "{}: the disk lost every registration and its reservation meanwhile: recover takes it again",
            dev(lu)
        ))),
        _ => Ok(()),
    }
}

/// Unregisters the paths in `added` (re-registered by this check) after `f` stopped it.
fn undo<D: Disk>(lu: &mut D, added: &[usize], f: Failure, deadline: Instant) -> Failure {
    let name = dev(lu);
    let mut left = Vec::new();
    for &i in added {
        let p = &mut lu.paths()[i];
        if let Err(e) = p.register_ignore(0, deadline) {
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
fn probe_paths<D: Disk>(
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
        match lu.paths()[i].register(key, key, deadline) {
            Ok(()) => regs.push(PathReg::Registered),
            Err(e) if e.is_conflict() => {
                if let Err(f) = rejudge(lu, key, t, deadline) {
                    return Err(undo(lu, &added, f, deadline));
                }
                let p = &mut lu.paths()[i];
                let label = p.label().to_owned();
                let hctl = p.hctl().unwrap_or("?").to_owned();
                let r = p.register_ignore(key, deadline);
                if r.as_ref().is_ok() || r.as_ref().is_err_and(sg_persist::device::path_failure) {
                    // a timeout may still have registered it: verify as if it had
                    added.push(i);
                }
                if let Err(f) = rejudge(lu, key, t, deadline) {
                    return Err(undo(lu, &added, f, deadline));
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
        && let Err(f) = rejudge(lu, key, t, deadline)
    {
        return Err(undo(lu, &added, f, deadline));
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

/// READ KEYS through the first answering path: one key per registered I_T nexus.
pub(crate) fn read_keys<D: Disk>(lu: &mut D, deadline: Instant) -> Result<Vec<u64>, Failure> {
    lu.any_path(|p| p.read_keys(deadline))
        .map(|k| k.keys)
        .map_err(|e| failure(&e))
}

/// READ RESERVATION through the first answering path.
pub(crate) fn read_reservation<D: Disk>(
    lu: &mut D,
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
pub fn shared_key_warning<D: Disk>(lu: &D, key: u64, registrations: usize) -> Option<String> {
    let paths = lu.live() + lu.dead();
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
fn release_all<D: Disk>(lu: &mut D, key: u64, code: u8, deadline: Instant) {
    let Some(t) = PrType::from_code(code) else {
        return;
    };
    let name = dev(lu);
    for p in lu.paths() {
        match p.release(key, t, deadline) {
            Ok(()) => {}
            Err(e) if e.is_conflict() => {}
            Err(e) => warn!("{name}: path {}: {e}", p.label()),
        }
    }
}

/// Reads keys and reservation; returns (reservation, how often our key is registered, keys).
fn read_state<D: Disk>(
    lu: &mut D,
    key: u64,
    deadline: Instant,
) -> Result<(Option<Reservation>, usize, Vec<u64>), Failure> {
    let keys = read_keys(lu, deadline)?;
    let res = read_reservation(lu, deadline)?;
    Ok((res, count(&keys, key), keys))
}

/// What the disk shows, for a failure message: holder and registrations.
fn shows(res: Option<Reservation>, keys: &[u64], key: u64) -> String {
    let mut uniq: Vec<u64> = Vec::new();
    for k in keys {
        if !uniq.contains(k) {
            uniq.push(*k);
        }
    }
    let regs = uniq
        .iter()
        .map(|k| {
            let mut s = fmt_key(*k);
            if *k == key {
                s += " (this node)";
            }
            s
        })
        .collect::<Vec<_>>();
    format!(
        "the disk shows reservation {}, registered {}",
        res.map_or_else(|| "none".to_owned(), |r| describe(&r)),
        if regs.is_empty() {
            "nobody".to_owned()
        } else {
            regs.join(", ")
        }
    )
}

/// The check shared by quickCheck, recover and watch: fenced / failed / ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// We hold it with the configured type.
    Ours,
    /// Nobody holds it; our key is registered.
    Free,
    /// We hold it with another type.
    WrongType(u8),
    /// No reservation and no registration at all: the LU lost its PR state (a target restart
    /// without persist-through-power-loss, PR OUT CLEAR). Not fenced: nobody else holds.
    Lost,
}

/// Why this node is fenced: another node took the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// Another key holds the reservation.
    OtherHolder(Reservation),
    /// Our key is no longer registered while other keys are (another node preempted it).
    KeyGone,
}

impl Fence {
    /// The exit-3 failure for device `name`.
    pub fn failure(&self, name: &str, key: u64) -> Failure {
        Failure::fenced(match self {
            Fence::OtherHolder(r) => format!(
                "{name}: the reservation is held by another node ({}), not by this node's key {}: this node is fenced and must not write; let LifeKeeper fail over",
                describe(r),
                fmt_key(key)
            ),
            Fence::KeyGone => format!(
                "{name}: this node's key {} is no longer registered (another node preempted it): this node is fenced; let LifeKeeper fail over",
                fmt_key(key)
            ),
        })
    }
}

/// Classifies a reservation state from this node's point of view.
fn classify_state(
    res: Option<Reservation>,
    keys: &[u64],
    key: u64,
    t: PrType,
) -> Result<Held, Fence> {
    let registered = keys.contains(&key);
    match res {
        None if keys.is_empty() => Ok(Held::Lost),
        Some(r) if !holds(&r, key, registered) => Err(Fence::OtherHolder(r)),
        _ if !registered => Err(Fence::KeyGone),
        None => Ok(Held::Free),
        Some(r) if r.type_code != t.code() => Ok(Held::WrongType(r.type_code)),
        Some(_) => Ok(Held::Ours),
    }
}

/// [`classify_state`], fenced as an error with exit 3.
fn classify(
    name: &str,
    res: Option<Reservation>,
    keys: &[u64],
    key: u64,
    t: PrType,
) -> Result<Held, Failure> {
    classify_state(res, keys, key, t).map_err(|f| f.failure(name, key))
}

/// Reads the LU's reservation state and classifies it (see [`Held`]); fenced is an error with
/// exit 3. PR IN only.
pub fn judge<D: Disk>(lu: &mut D, key: u64, t: PrType, deadline: Instant) -> Result<Held, Failure> {
    let res = read_reservation(lu, deadline)?;
    // Holding a non-all-registrants reservation implies our key is registered: the keys need
    // reading only when the holder is not plainly us.
    if res.is_some_and(|r| r.key == key && !all_reg(&r)) {
        return classify(&dev(lu), res, &[key], key, t);
    }
    let keys = read_keys(lu, deadline)?;
    classify(&dev(lu), res, &keys, key, t)
}

/// What a successful action leaves for the next check: the live paths' nexus identities and
/// how often our key was registered (see the module doc).
fn record<D: Disk>(lu: &mut D, ours: usize) -> String {
    let ids: Vec<String> = lu.paths().iter().map(|p| p.nexus_id()).collect();
    format!("{}|dead={}|keys={ours}", ids.join(","), lu.dead())
}

/// Whether `seen` (the record of the last verified check) still describes the LU: same
/// nexuses, and our key registered at least as often.
fn unchanged<D: Disk>(lu: &mut D, seen: Option<&str>, ours: usize) -> bool {
    let Some(seen) = seen else {
        return false;
    };
    let Some((ids, n)) = seen.rsplit_once("|keys=") else {
        return false;
    };
    let now = record(lu, 0);
    let same_ids = now.rsplit_once("|keys=").is_some_and(|(i, _)| i == ids);
    same_ids && n.parse::<usize>().is_ok_and(|n| n > 0 && ours >= n)
}

/// The result of a successful action on one LU: its message and the record for the next check.
pub type Done = (String, String);

/// Why this restore lost, as an exit-3 failure.
fn lost(name: &str, why: &str) -> Failure {
    Failure::fenced(format!(
        "{name}: another node won: {why}; this node does not hold the disk and must not write: let LifeKeeper bring the resource in service where it is held"
    ))
}

/// restore on one LU (see the module doc): observe, register, take, verify; any failure rolls
/// this node's registrations back.
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
fn take_observed<D: Disk>(
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
/// later look could see a racer's fresh win as an old holder and take it over). The first
/// failure stops it and the LUs already taken are given back; with every LU taken, the
/// earlier ones are judged again (the last one's final read was just made), so exit 0 means
/// this node holds every disk at the end.
pub fn restore_all<D: Disk>(
    lus: &mut [D],
    key: u64,
    t: PrType,
    deadline: Instant,
) -> Result<Vec<Done>, Failure> {
    let starts = lus
        .iter_mut()
        .map(|lu| observe(lu, deadline))
        .collect::<Result<Vec<Start>, Failure>>()?;
    let mut done = Vec::new();
    for (i, start) in starts.iter().enumerate() {
        match take_observed(&mut lus[i], key, t, start, deadline) {
            Ok(d) => done.push(d),
            Err(f) => return Err(give_back(lus, i, key, t, f, deadline)),
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

/// The order in which every node takes a resource's LUs: by the LU's world-wide name (`id`,
/// the kernel's `wwid` from VPD 0x83: the same on every node, whatever the device names and
/// their order in DEVICE=), LUs without one last, in the configured order.
pub fn arbitration_order<T>(lus: &mut [T], id: impl Fn(&T) -> Option<String>) {
    lus.sort_by_cached_key(|lu| match id(lu) {
        Some(w) => (false, w),
        None => (true, String::new()),
    });
}

/// The kernel's world-wide name of a resolved LU (its first path's `device/wwid` in sysfs,
/// read at scan time from VPD 0x83: no command is sent).
fn wwid(r: &Resolved) -> Option<String> {
    let p = r.paths.first()?;
    let w = std::fs::read_to_string(
        SysRoot::default()
            .sys
            .join("class/block")
            .join(&p.name)
            .join("device/wwid"),
    )
    .ok()?;
    let w = w.trim();
    (!w.is_empty()).then(|| w.to_owned())
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
struct Start {
    res: Option<Reservation>,
    keys: Vec<u64>,
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
        let (res, ours, keys) = read_state_for(lu, key, t, deadline)?;
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
                        .map(|s| (s, record(lu, ours)));
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
) -> Result<(Option<Reservation>, usize, Vec<u64>), Failure> {
    if t.all_registrants() {
        let res = read_reservation(lu, deadline)?;
        let keys = read_keys(lu, deadline)?;
        Ok((res, count(&keys, key), keys))
    } else {
        read_state(lu, key, deadline)
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

/// What quickCheck and recover know from earlier actions on this node.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory<'a> {
    /// The record the last verified action left for this LU (see [`record`]).
    pub seen: Option<&'a str>,
    /// Our records say this node held the disk (a verified restore, quickCheck or recover
    /// since the last remove, and no fenced verdict since).
    pub was_holder: bool,
}

/// This node's records of one tag (`<run dir>/scsipr/<TAG>/paths`), as the hooks, `status`
/// and `watch` read them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Records(Option<std::collections::BTreeMap<String, String>>);

impl Records {
    /// The records of `tag` (none after remove, a fenced verdict, or a reboot).
    pub fn load(tag: &str) -> Records {
        Records(records::load(tag))
    }
    /// What they say about the LU named `device`.
    pub fn memory(&self, device: &str) -> Memory<'_> {
        Memory {
            seen: self
                .0
                .as_ref()
                .and_then(|k| k.get(device))
                .map(String::as_str),
            was_holder: self.0.is_some(),
        }
    }
}

/// What one look knows about one path's registration of this node's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathReg {
    /// Registered, known without any PR OUT: the records of the last verified check still
    /// describe the LU (the same nexuses, our key registered as often).
    Recorded,
    /// Not known without a PR OUT (a new nexus, no record, or our key registered fewer times
    /// than recorded): quickCheck probes it with REGISTER(key, key); `status` does not.
    Unprobed,
    /// Our key is registered on no nexus at all, so on no path.
    Unregistered,
    /// Probed by quickCheck or recover: registered.
    Registered,
    /// Probed: it had lost its registration and was registered again.
    ReRegistered,
    /// No answer, when the LU was opened or to the probe (the error).
    NoAnswer(String),
}

impl PathReg {
    /// Whether the path is known to carry our key.
    pub fn registered(&self) -> bool {
        matches!(
            self,
            PathReg::Recorded | PathReg::Registered | PathReg::ReRegistered
        )
    }
    /// The state in a word or two.
    pub fn word(&self) -> &'static str {
        match self {
            PathReg::Recorded => "recorded",
            PathReg::Unprobed => "not probed",
            PathReg::Unregistered => "not registered",
            PathReg::Registered => "registered",
            PathReg::ReRegistered => "re-registered",
            PathReg::NoAnswer(_) => "no answer",
        }
    }
}

/// One path of a LU as the look found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathHealth {
    pub name: String,
    pub hctl: Option<String>,
    pub reg: PathReg,
}

/// The verdict on one LU: the classification of what the disk shows ([`Held`]), fenced, or
/// no answer (the reads failed: no path answers, a command refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Held(Held),
    Fenced(Fence),
    NoAnswer(Failure),
}

/// One look at one LU ([`assess_lu`]): quickCheck's answer for it, and all `status -t TAG`
/// shows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuHealth {
    /// What was checked: the device, this node's key and TYPE, the paths (live ones first,
    /// then those that did not answer when the LU was opened).
    pub device: String,
    pub key: u64,
    pub pr_type: PrType,
    pub paths: Vec<PathHealth>,
    /// Our records say this node held the disk (see [`Memory`]).
    pub was_holder: bool,
    /// What was found: the reservation and the registered keys, one per I_T nexus (none when
    /// they could not be read).
    pub reservation: Option<Reservation>,
    pub keys: Vec<u64>,
    pub verdict: Verdict,
}

impl LuHealth {
    /// How often our key is registered.
    pub fn ours(&self) -> usize {
        count(&self.keys, self.key)
    }

    /// quickCheck's answer for this LU: the one-line summary, or the failure with its exit code.
    pub fn outcome(&self) -> Result<String, Failure> {
        let (name, key, t) = (&self.device, self.key, self.pr_type);
        match &self.verdict {
            Verdict::NoAnswer(f) => Err(f.clone()),
            Verdict::Fenced(f) => Err(f.failure(name, key)),
            Verdict::Held(Held::Lost) => Err(lost_state(name, self.was_holder)),
            Verdict::Held(Held::Free) => Err(nobody_holds(name, key)),
            Verdict::Held(Held::WrongType(c)) => Err(wrong_type(name, *c, t)),
            Verdict::Held(Held::Ours) => {
                let n = |f: fn(&PathReg) -> bool| self.paths.iter().filter(|p| f(&p.reg)).count();
                let total = self.paths.len();
                if n(|r| *r == PathReg::Unprobed) > 0 {
                    // only a look without PR OUT (`status`): quickCheck probes these paths
                    return Ok(format!(
                        "{name}: reserved by {} ({t}), the key registered {} time(s) for {total} path(s); which paths carry it is not probed without PR OUT (a new I_T nexus, or no record of a verified check): quickCheck probes each path with REGISTER and re-registers one that lost its key",
                        fmt_key(key),
                        self.ours()
                    ));
                }
                let mut s = format!(
                    "{name}: reserved by {} ({t}), {}/{total} path(s) registered",
                    fmt_key(key),
                    n(PathReg::registered)
                );
                let fixed = n(|r| *r == PathReg::ReRegistered);
                if fixed > 0 {
                    s += &format!(", {fixed} re-registered");
                }
                Ok(s)
            }
        }
    }

    /// The exit code quickCheck returns for this look (taken from [`LuHealth::outcome`]).
    pub fn exit(&self) -> Exit {
        self.outcome().map_or_else(|f| f.exit, |_| Exit::Ok)
    }

    /// The verdict in a few words.
    pub fn verdict_name(&self) -> &'static str {
        match &self.verdict {
            Verdict::Held(Held::Ours) => "ours",
            Verdict::Held(Held::Free) => "nobody holds",
            Verdict::Held(Held::WrongType(_)) => "wrong type",
            Verdict::Held(Held::Lost) => "lost PR state",
            Verdict::Fenced(_) => "fenced",
            Verdict::NoAnswer(_) => "no answer",
        }
    }
}

/// One look at a resource ([`assess`]): one [`LuHealth`] per configured disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub lus: Vec<LuHealth>,
}

impl Health {
    /// quickCheck's answer: every LU's, the worst exit winning (see [`combine`]).
    pub fn outcome(&self) -> Outcome {
        combine(self.lus.iter().map(LuHealth::outcome).collect())
    }
    /// The exit code quickCheck returns for this look.
    pub fn exit(&self) -> Exit {
        self.outcome().map_or_else(|f| f.exit, |_| Exit::Ok)
    }
    /// The verdict of the first LU whose exit code is the resource's.
    pub fn verdict_name(&self) -> &'static str {
        let exit = self.exit();
        self.lus
            .iter()
            .find(|l| l.exit() == exit)
            .map_or("no disk", LuHealth::verdict_name)
    }
}

fn lost_why(name: &str) -> String {
    format!(
        "{name}: the disk shows no reservation and no registration at all: it lost its persistent-reservation state (a target restart without persist-through-power-loss, or PR OUT CLEAR); this is not a takeover by another node"
    )
}

fn lost_state(name: &str, was_holder: bool) -> Failure {
    let why = lost_why(name);
    if was_holder {
        Failure::failed(format!("{why}: recover registers and reserves again"))
    } else {
        Failure::failed(format!(
            "{why}; this node has no record of holding it: run restore on the node that should have the disk"
        ))
        // not in service here (after remove, or never restored): Pacemaker's "not running"
        .not_running()
    }
}

fn nobody_holds(name: &str, key: u64) -> Failure {
    Failure::failed(format!(
        "{name}: nobody holds the reservation (this node's key {} is still registered): recover will take it again",
        fmt_key(key)
    ))
}

fn wrong_type(name: &str, code: u8, t: PrType) -> Failure {
    Failure::failed(format!(
        "{name}: this node holds the reservation with type {} but TYPE is {t}: recover will re-take it with {t}",
        PrType::code_name(code)
    ))
}

/// The one assessment of one LU, which quickCheck, recover, `status -t TAG` and `watch`
/// share. PR IN only: READ KEYS and READ RESERVATION through the first answering path,
/// classified from this node's point of view ([`classify_state`]); each path's registration
/// as far as it is known without a PR OUT (from `mem`, see [`PathReg`]).
pub fn assess_lu<D: Disk>(
    lu: &mut D,
    key: u64,
    t: PrType,
    mem: Memory<'_>,
    deadline: Instant,
) -> LuHealth {
    let (reservation, keys, verdict, quiet) = match read_state(lu, key, deadline) {
        Err(f) => (None, Vec::new(), Verdict::NoAnswer(f), false),
        Ok((res, ours, keys)) => {
            let v = match classify_state(res, &keys, key, t) {
                Ok(held) => Verdict::Held(held),
                Err(fence) => Verdict::Fenced(fence),
            };
            (res, keys, v, unchanged(lu, mem.seen, ours))
        }
    };
    let reg = if quiet {
        PathReg::Recorded
    } else if count(&keys, key) == 0 && !matches!(verdict, Verdict::NoAnswer(_)) {
        PathReg::Unregistered
    } else {
        PathReg::Unprobed
    };
    let mut paths: Vec<PathHealth> = lu
        .paths()
        .iter()
        .map(|p| PathHealth {
            name: p.label().to_owned(),
            hctl: p.hctl().map(str::to_owned),
            reg: reg.clone(),
        })
        .collect();
    paths.extend(lu.dead_paths().into_iter().map(|d| PathHealth {
        name: d.name,
        hctl: d.hctl,
        reg: PathReg::NoAnswer(d.error),
    }));
    LuHealth {
        device: dev(lu),
        key,
        pr_type: t,
        paths,
        was_holder: mem.was_holder,
        reservation,
        keys,
        verdict,
    }
}

/// The one assessment of a resource: [`assess_lu`] on each of its LUs, with this node's
/// records of `tag`. Changes nothing: `status -t TAG` shows it, and quickCheck ([`check_lu`])
/// starts from the same look.
pub fn assess<D: Disk>(lus: &mut [D], tag: &str, key: u64, t: PrType, deadline: Instant) -> Health {
    let known = Records::load(tag);
    Health {
        lus: lus
            .iter_mut()
            .map(|lu| {
                let name = dev(lu);
                assess_lu(lu, key, t, known.memory(&name), deadline)
            })
            .collect(),
    }
}

/// quickCheck (repair = false: only re-registers paths) and recover (repair = true: also
/// re-takes a reservation nobody holds, or fixes its type, or re-takes a LU that lost its PR
/// state when this node held it). Both start from [`assess_lu`]; a healthy LU whose records
/// hold is answered from that look alone (no PR OUT). Otherwise the paths are probed (and
/// re-registered, judged before and after, see [`probe_paths`]), the repair made, and the
/// answer is a second look, with what the probe found on each path.
pub fn check_lu<D: Disk>(
    lu: &mut D,
    key: u64,
    t: PrType,
    repair: bool,
    mem: Memory<'_>,
    deadline: Instant,
) -> Result<Done, Failure> {
    let name = dev(lu);
    let first = assess_lu(lu, key, t, mem, deadline);
    let held = match &first.verdict {
        Verdict::Held(Held::Lost) if repair && mem.was_holder => {
            let out = register_all(lu, key, deadline)
                .and_then(|n| take(lu, key, t, &Start::default(), n, deadline))
                .map_err(|f| roll_back(lu, key, t, f, deadline))?;
            warn!("{}: registered and reserved again", lost_why(&name));
            return Ok(out);
        }
        // the look's failure (these verdicts are never Ok) is the answer
        Verdict::Held(Held::Lost) | Verdict::Fenced(_) | Verdict::NoAnswer(_) => {
            return first.outcome().map(|m| (m, String::new()));
        }
        Verdict::Held(held) => *held,
    };
    let quiet = first.paths.iter().any(|p| p.reg == PathReg::Recorded);
    let probed = if quiet {
        None
    } else {
        Some(probe_paths(lu, key, t, deadline)?)
    };
    match held {
        Held::Ours
            if single_holder_type(t) && !quiet && !held_on_live_path(lu, key, t, deadline) =>
        {
            move_to_live_nexus(lu, key, t, deadline)?
        }
        // Lost was answered above
        Held::Ours | Held::Lost => {}
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
        Held::WrongType(c) if repair => {
            release_all(lu, key, c, deadline);
            lu.any_path(|p| p.reserve(key, t, deadline))
                .map_err(|e| failure(&e))?;
            judge_ours(lu, key, t, deadline)?;
        }
        // quickCheck: the look's failure
        Held::Free | Held::WrongType(_) => return first.outcome().map(|m| (m, String::new())),
    }
    match (quiet, held, mem.seen) {
        // nothing was sent but the look's two reads: it is the answer, the records stand
        (true, Held::Ours, Some(seen)) => first.outcome().map(|m| (m, seen.to_owned())),
        _ => {
            let mut again = assess_lu(lu, key, t, mem, deadline);
            for (p, r) in again.paths.iter_mut().zip(probed.into_iter().flatten()) {
                p.reg = r;
            }
            let msg = again.outcome()?;
            let rec = match (quiet, mem.seen) {
                (true, Some(seen)) => seen.to_owned(),
                _ => record(lu, again.ours()),
            };
            Ok((msg, rec))
        }
    }
}

/// Types under which only the one holding I_T nexus may write (or access).
fn single_holder_type(t: PrType) -> bool {
    matches!(t, PrType::WriteExclusive | PrType::ExclusiveAccess)
}

/// Under WRITE EXCLUSIVE / EXCLUSIVE ACCESS, whether the nexus holding our key's reservation is
/// one of our live paths: RESERVE of the held type is a no-op answered GOOD by the holder and
/// RESERVATION CONFLICT by every other nexus, our own included. Stops at the first GOOD.
/// (RESERVE does not change the PR generation.)
fn held_on_live_path<D: Disk>(lu: &mut D, key: u64, t: PrType, deadline: Instant) -> bool {
    lu.paths()
        .iter_mut()
        .any(|p| p.reserve(key, t, deadline).is_ok())
}

/// Our key holds the reservation through a nexus that no longer exists (the old WWPN after a
/// flip): under WRITE EXCLUSIVE / EXCLUSIVE ACCESS none of our paths could write then. PREEMPT
/// with our own key moves the reservation to a live nexus and drops every registration of our
/// key elsewhere (stale nexuses included); the other live paths are registered again at once.
/// Non-holder paths cannot write under these types anyway, so the short gap costs nothing.
fn move_to_live_nexus<D: Disk>(
    lu: &mut D,
    key: u64,
    t: PrType,
    deadline: Instant,
) -> Result<(), Failure> {
    let name = dev(lu);
    let Some(first) = lu.paths().first_mut() else {
        return Ok(());
    };
    let moved = first.preempt(key, key, t, deadline);
    let label = first.label().to_owned();
    if let Err(e) = moved {
        // a conflict: this node's key is gone (another node took over): the look says so
        return Err(match e.is_conflict().then(|| judge(lu, key, t, deadline)) {
            Some(Err(f)) => f,
            _ => failure(&e),
        });
    }
    // Each re-registration as in `probe_paths`: judged right before and right after, so a
    // takeover meanwhile never leaves this node registered under the new holder.
    let mut added = Vec::new();
    for i in 1..lu.live() {
        if let Err(f) = rejudge(lu, key, t, deadline) {
            return Err(undo(lu, &added, f, deadline));
        }
        let p = &mut lu.paths()[i];
        match p.register_ignore(key, deadline) {
            Ok(()) => added.push(i),
            Err(e) => warn!(
                "{name}: path {}: re-registering after the move failed: {e}",
                p.label()
            ),
        }
    }
    match judge_ours(lu, key, t, deadline) {
        Ok(()) => {
            info!("{name}: reservation ({t}) moved to path {label} after its nexus changed");
            Ok(())
        }
        Err(f) => Err(undo(lu, &added, f, deadline)),
    }
}

fn judge_ours<D: Disk>(lu: &mut D, key: u64, t: PrType, deadline: Instant) -> Result<(), Failure> {
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

/// The records quickCheck and recover use (see the module doc): one line per LU,
/// `<device name>\t<record>`, stored as `paths` in the tag's run state
/// (`<run dir>/scsipr/<TAG>/paths`, lkh-common's `runstate`: checked root-only directory,
/// mode 0600, replaced atomically, never through a symbolic link).
mod records {
    use std::collections::BTreeMap;

    use lkh_common::Tag;

    const NAME: &str = "paths";

    /// The records of `tag`, or `None` when there are none.
    pub fn load(tag: &str) -> Option<BTreeMap<String, String>> {
        let tag = Tag::parse(tag).ok()?;
        let bytes = match crate::state::run_dir().load(&tag, NAME) {
            Ok(b) => b?,
            Err(e) => {
                log::warn!("{e}");
                return None;
            }
        };
        let s = String::from_utf8(bytes).ok()?;
        Some(
            s.lines()
                .filter_map(|l| l.split_once('\t'))
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .collect(),
        )
    }

    /// Replaces the records of `tag`; a failure is logged (the next check probes the paths).
    pub fn save(tag: &str, recs: &BTreeMap<String, String>) {
        let Ok(tag) = Tag::parse(tag) else { return };
        let text: String = recs.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
        if let Err(e) = crate::state::run_dir().store(&tag, NAME, text.as_bytes()) {
            log::warn!("{e}; the next quickCheck probes every path");
        }
    }

    /// Forgets `tag` (remove, fenced).
    pub fn clear(tag: &str) {
        if let Ok(tag) = Tag::parse(tag)
            && let Err(e) = crate::state::run_dir().remove(&tag, NAME)
        {
            log::warn!("{e}");
        }
    }
}

/// quickCheck's answer on a node without a reservation key (`status -t TAG` gives the same).
pub fn no_key(s: &Settings) -> Failure {
    Failure::failed(format!(
        "this node has no reservation key ({}): restore was never run here",
        s.conf_dir.join(crate::settings::NODE_KEY_FILE).display()
    ))
    .not_running()
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
    let mut next = std::collections::BTreeMap::new();
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
