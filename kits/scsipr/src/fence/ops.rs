//! The agent's actions on the disks, after the request was checked: `on` (unfence the node it
//! runs on: register its key on every path of every device, reserve when nobody holds),
//! `off` (audit every device's keys against the map, register this node's key, PREEMPT AND
//! ABORT the victim's key, verify), `status` (on when the plug's key is registered anywhere,
//! off only with proof on every device) and `monitor` (every device answers, every key is
//! known). They use the policy's LU primitives ([`crate::actions::prim`]) with type
//! write-exclusive-registrants-only.

use std::path::PathBuf;
use std::time::Instant;

use lkh_common::Failure;
use log::{info, warn};
use sg_persist::{Lu, PrType};

use crate::pr::{Disk, Nexus};

use super::keymap::KeyMap;
use crate::actions::{open, outcome, prim};
use crate::settings::fmt_key;

/// The reservation type the agent uses: only registrants may write, one of them holds.
const TYPE: PrType = PrType::WriteExclusiveRegistrantsOnly;

/// The result of an action: exit 0 with a summary, or status "off" (exit 2).
pub enum Done {
    Ok(String),
    Off(String),
}

/// `on`: register this node's key on every path, reserve if nobody holds, verify.
pub fn on(devices: &[PathBuf], own: u64, deadline: Instant) -> Result<String, Failure> {
    let mut lus = open::open_all(devices, false, deadline)?;
    outcome::combine(lus.iter_mut().map(|lu| on_lu(lu, own, deadline)).collect())
}

fn on_lu(lu: &mut Lu, own: u64, deadline: Instant) -> Result<String, Failure> {
    let name = prim::dev(lu);
    let registered = prim::register_all(lu, own, deadline)?;
    if prim::read_reservation(lu, deadline)?.is_none() {
        match lu.any_path(|p| p.reserve(own, TYPE, deadline)) {
            Ok(()) => info!("{name}: reserved with {} ({TYPE})", fmt_key(own)),
            Err(e) if e.is_conflict() => {} // another node reserved meanwhile
            Err(e) => return Err(outcome::failure(&e)),
        }
    }
    let ours = prim::count(&prim::read_keys(lu, deadline)?, own);
    if ours < registered {
        return Err(Failure::failed(format!(
            "{name}: only {ours} of {registered} path(s) show this node's key {} after registering (another node preempted it meanwhile?): see `lkh-scsipr status {name}`",
            fmt_key(own)
        )));
    }
    if let Some(w) = prim::shared_key_warning(lu, own, ours) {
        warn!("{w}");
    }
    let Some(r) = prim::read_reservation(lu, deadline)? else {
        return Err(Failure::failed(format!(
            "{name}: nobody holds a reservation after reserving: run on again; `lkh-scsipr status {name}` shows the state"
        )));
    };
    Ok(format!(
        "{name}: {} registered on {registered} path(s), reservation {}",
        fmt_key(own),
        prim::describe(&r)
    ))
}

/// `off`: first every device is audited (all registered keys known), then on each: this node
/// must still be registered ([`own_registration`]: a node whose key is gone from the LU has
/// been fenced itself and may not fence anyone), PREEMPT AND ABORT the victim's key, make sure
/// a reservation exists, verify.
pub fn off(
    devices: &[PathBuf],
    map: &KeyMap,
    plug: &str,
    own: u64,
    victim: u64,
    deadline: Instant,
) -> Result<String, Failure> {
    let mut lus = open::open_all(devices, false, deadline)?;
    for lu in &mut lus {
        let keys = prim::read_keys(lu, deadline)?;
        map.audit(&prim::dev(lu), &keys)
            .map_err(|e| Failure::failed(format!("{e}: {plug} was not fenced")))?;
    }
    outcome::combine(
        lus.iter_mut()
            .map(|lu| off_lu(lu, map, plug, own, victim, deadline))
            .collect(),
    )
}

/// The fence agent's rule: only a registered node can fence. This node's key must still be
/// registered on the LU through at least one nexus; a path whose nexus lost it (an iSCSI
/// reconnect with a new session id, a virtual FC WWPN flip) is registered again with
/// REGISTER from key 0, which the target refuses on a nexus that is registered, and then the
/// key is counted again: a PREEMPT of this node's key removes every registration of it at
/// once, so a count short of the earlier ones plus the new ones means this node was fenced
/// meanwhile, and what was just added is removed again. Returns the keys registered then.
/// A node whose key is gone from the whole LU has been fenced: its PREEMPT must get the
/// RESERVATION CONFLICT that is the fence, so nothing is sent.
pub(crate) fn own_registration<D: Disk>(
    lu: &mut D,
    own: u64,
    plug: &str,
    deadline: Instant,
) -> Result<Vec<u64>, Failure> {
    let name = prim::dev(lu);
    let keys = prim::read_keys(lu, deadline)?;
    let ours = prim::count(&keys, own);
    let fenced = |why: &str| {
        Failure::failed(format!(
            "{name}: this node's key {} {why}: this node has been fenced itself (another node preempted it) and must not fence {plug}; nothing was changed on {name}; only unfencing (`on`, which Pacemaker runs when this node rejoins) registers it again",
            fmt_key(own)
        ))
    };
    if ours == 0 {
        return Err(fenced("is not registered on the disk"));
    }
    let mut added = Vec::new();
    let mut unsure = false;
    for i in 0..lu.live() {
        let p = &mut lu.paths()[i];
        match p.register(0, own, deadline) {
            Ok(()) => added.push(i),
            // registered already (with our key: the count says so)
            Err(e) if e.is_conflict() => {}
            Err(e) => {
                warn!("{name}: path {}: {e}", p.label());
                // it may have run: undone below if this node turns out to be fenced
                added.push(i);
                unsure = true;
            }
        }
    }
    if added.is_empty() {
        return Ok(keys);
    }
    // every registration seen before, and every one just added (a path that did not answer
    // counted as added): anything less means this node's key was preempted meanwhile
    let now = prim::read_keys(lu, deadline)?;
    if prim::count(&now, own) >= ours + added.len() {
        info!(
            "{name}: this node's key {} registered again on {} path(s) whose nexus had lost it",
            fmt_key(own),
            added.len()
        );
        return Ok(now);
    }
    for i in added {
        let p = &mut lu.paths()[i];
        if let Err(e) = p.register(own, 0, deadline)
            && !e.is_conflict()
        {
            warn!(
                "{name}: path {}: removing the registration just added failed: {e}",
                p.label()
            );
        }
    }
    if unsure {
        return Err(Failure::failed(format!(
            "{name}: a path did not answer while this node registered its key {} again, so it cannot tell whether it was fenced meanwhile: {plug} was not fenced; run off again",
            fmt_key(own)
        )));
    }
    Err(fenced(
        "was removed while this node registered a path again",
    ))
}

pub(crate) fn off_lu<D: Disk>(
    lu: &mut D,
    map: &KeyMap,
    plug: &str,
    own: u64,
    victim: u64,
    deadline: Instant,
) -> Result<String, Failure> {
    let name = prim::dev(lu);
    let keys = own_registration(lu, own, plug, deadline)?;
    // a node registered between the audit and now is audited too
    map.audit(&name, &keys)
        .map_err(|e| Failure::failed(format!("{e}: {plug} was not fenced on {name}")))?;
    let present = prim::count(&keys, victim);
    if present > 0 {
        match prim::preempt(lu, own, victim, TYPE, &mut false, deadline) {
            Ok(()) => info!("{name}: preempted and aborted {}", map.show(victim)),
            Err(e) if e.is_conflict() => {
                return Err(Failure::failed(format!(
                    "{name}: PREEMPT AND ABORT of {} was refused with RESERVATION CONFLICT: this node's own registration was removed meanwhile (this node is the one being fenced); {plug} was not fenced",
                    map.show(victim)
                )));
            }
            Err(e) => return Err(outcome::failure(&e)),
        }
    }
    if prim::read_reservation(lu, deadline)?.is_none() {
        match lu.any_path(|p| p.reserve(own, TYPE, deadline)) {
            Ok(()) => info!(
                "{name}: nobody held a reservation: reserved with {}",
                fmt_key(own)
            ),
            Err(e) if e.is_conflict() => {}
            Err(e) => return Err(outcome::failure(&e)),
        }
    }
    // verify
    let keys = prim::read_keys(lu, deadline)?;
    if keys.contains(&victim) {
        return Err(Failure::failed(format!(
            "{name}: {} is still registered after PREEMPT AND ABORT: {plug} is NOT fenced; see `lkh-scsipr status {name}`",
            map.show(victim)
        )));
    }
    if !keys.contains(&own) {
        return Err(Failure::failed(format!(
            "{name}: this node's key {} is gone after fencing (another node preempted it): {plug}'s state is unknown; see `lkh-scsipr status {name}`",
            fmt_key(own)
        )));
    }
    let Some(r) = prim::read_reservation(lu, deadline)? else {
        return Err(Failure::failed(format!(
            "{name}: nobody holds a reservation, so {plug} could still write: run off again"
        )));
    };
    let others: Vec<String> = uniq(&keys).iter().map(|k| map.show(*k)).collect();
    Ok(if present > 0 {
        format!(
            "{name}: {plug} fenced: {} preempted; registered now: {}; reservation {}",
            fmt_key(victim),
            others.join(", "),
            prim::describe(&r)
        )
    } else {
        format!(
            "{name}: {plug} was already off: its key {} is not registered, every registration belongs to another node of keys= ({}) and the reservation is held ({})",
            fmt_key(victim),
            others.join(", "),
            prim::describe(&r)
        )
    })
}

/// `status`: on when the plug's key is registered on any device; off only with proof on every
/// device (all registrations known, a reservation held); else an error.
pub fn status(
    devices: &[PathBuf],
    map: &KeyMap,
    plug: &str,
    deadline: Instant,
) -> Result<Done, Failure> {
    let victim = map.victim(plug).map_err(Failure::failed)?;
    let mut lus = open::open_all(devices, false, deadline)?;
    let mut errors = Vec::new();
    let mut on_at = Vec::new();
    for lu in &mut lus {
        let name = prim::dev(lu);
        let r = (|| {
            let keys = prim::read_keys(lu, deadline)?;
            if keys.contains(&victim) {
                return Ok(true);
            }
            map.audit(&name, &keys)
                .map_err(|e| Failure::failed(format!("{e}: cannot tell whether {plug} is off")))?;
            if prim::read_reservation(lu, deadline)?.is_none() {
                return Err(Failure::failed(format!(
                    "{name}: {plug}'s key {} is not registered, but nobody holds a reservation, so {plug} is not fenced from it: unfence the nodes (on)",
                    fmt_key(victim)
                )));
            }
            Ok(false)
        })();
        match r {
            Ok(true) => on_at.push(name),
            Ok(false) => {}
            Err(f) => errors.push(f.message),
        }
    }
    if !on_at.is_empty() {
        println!("Status: ON");
        return Ok(Done::Ok(format!(
            "{plug} is on: its key {} is registered on {}",
            fmt_key(victim),
            on_at.join(", ")
        )));
    }
    if !errors.is_empty() {
        return Err(Failure::failed(errors.join("; ")));
    }
    println!("Status: OFF");
    Ok(Done::Off(format!(
        "{plug} is off: its key {} is registered on none of the {} device(s), under a reservation",
        fmt_key(victim),
        devices.len()
    )))
}

/// `monitor`: every device answers READ KEYS and READ RESERVATION through some path, and every
/// registered key is in the map.
pub fn monitor(devices: &[PathBuf], map: &KeyMap, deadline: Instant) -> Result<String, Failure> {
    let mut lus = open::open_all(devices, false, deadline)?;
    outcome::combine(
        lus.iter_mut()
            .map(|lu| {
                let name = prim::dev(lu);
                let keys = prim::read_keys(lu, deadline)?;
                let res = prim::read_reservation(lu, deadline)?;
                map.audit(&name, &keys).map_err(Failure::failed)?;
                let k = uniq(&keys);
                Ok(format!(
                    "{name}: {} path(s) answer; registered: {}; reservation: {}",
                    lu.paths.len(),
                    if k.is_empty() {
                        "none".to_owned()
                    } else {
                        k.iter()
                            .map(|k| map.show(*k))
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    res.map_or_else(|| "none".to_owned(), |r| prim::describe(&r))
                ))
            })
            .collect(),
    )
}

/// The distinct keys, in first-seen order.
fn uniq(keys: &[u64]) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for k in keys {
        if !out.contains(k) {
            out.push(*k);
        }
    }
    out
}
