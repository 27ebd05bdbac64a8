//! Opening a resource's disks: every device name resolved through sysfs before anything is
//! sent to any disk (a wrong name is a usage error, exit 2), then each LU opened with its
//! paths confirmed to be one LU, under a per-command timeout kept inside the action's budget.
//! [`arbitration_order`] is the order every node takes a resource of several disks in (see
//! [`super::restore`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lkh_common::Failure;
use log::warn;
use sg_persist::{Identity, Lu, Options, Resolved, SysRoot, sysfs_identity};

use super::outcome::failure;
use super::records::Records;
use sg_persist::exec::join_all;

/// Upper bound of one SCSI command (kept well under the action's TIMEOUT).
pub const CMD_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a diagnostic (`status`, `doctor`) may take.
pub const DIAG_TIMEOUT: Duration = Duration::from_secs(20);

/// Library options for a given deadline budget.
pub fn options(budget: Duration) -> Options {
    Options {
        cmd_timeout: CMD_TIMEOUT.min(budget / 2).max(Duration::from_millis(500)),
        identify_single: false,
        ..Options::default()
    }
}

/// A device name resolved: its paths, its device number, and the record of a resolution that
/// was re-validated instead of made anew (see [`resolve_known`]).
pub struct Named {
    pub resolved: Resolved,
    pub rdev: (u64, u64),
    pub known: Option<String>,
}

/// Resolves every device name through sysfs; a wrong one is a usage error (exit 2).
pub fn resolve_all(devices: &[PathBuf]) -> Result<Vec<Resolved>, Failure> {
    Ok(resolve_known(devices, &Records::default())?
        .into_iter()
        .map(|n| n.resolved)
        .collect())
}

/// Resolves every device name (a wrong one is a usage error, exit 2): where this node's
/// records (`known`) keep how the name resolved and that still holds
/// (`Resolved::revalidate`: the device number, the paths' block and sg devices and the
/// LU's serial number, a few system calls per path), that resolution; else anew through
/// sysfs.
pub fn resolve_known(devices: &[PathBuf], known: &Records) -> Result<Vec<Named>, Failure> {
    let root = SysRoot::default();
    devices
        .iter()
        .map(|d| {
            let wrong = |e: sg_persist::PathError| {
                let f = Failure::usage(e.to_string());
                // a name this node does not have at all, as opposed to a wrong kind of device
                if std::fs::symlink_metadata(d).is_err() {
                    f.missing_here()
                } else {
                    f
                }
            };
            let rdev = sg_persist::path::block_devnum(d).map_err(wrong)?;
            let name = d.display().to_string();
            if let Some(rec) = known.get(&name).and_then(|r| r.resolved.as_deref())
                && let Some(resolved) = Resolved::revalidate(d, rdev, rec, &root)
            {
                return Ok(Named {
                    resolved,
                    rdev,
                    known: Some(rec.to_owned()),
                });
            }
            let resolved =
                sg_persist::path::resolve_devnum(d, rdev.0, rdev.1, &root).map_err(wrong)?;
            Ok(Named {
                resolved,
                rdev,
                known: None,
            })
        })
        .collect()
}

/// How `lu` resolved, for the records (see [`resolve_known`]): the re-validated record, or a
/// new one with the LU's serial number (from its identity, else the kernel's VPD cache).
pub fn resolution(lu: &Lu, named: &Named) -> Option<String> {
    if let Some(k) = &named.known {
        return Some(k.clone());
    }
    let serial = lu
        .identity
        .as_ref()
        .and_then(|i| i.serial.clone())
        .or_else(|| {
            let p = lu.paths.first()?;
            sg_persist::path::sysfs_serial(&p.info.name, &SysRoot::default())
        })?;
    lu.resolved.record(named.rdev, &serial)
}

/// Resolves every device name first (nothing is sent to any disk when one is wrong), then
/// opens each LU and confirms its paths are one LU.
/// `identify`: read VPD 0x83 of single-path devices too (for display).
pub async fn open_all(
    devices: &[PathBuf],
    identify: bool,
    deadline: Instant,
) -> Result<Vec<Lu>, Failure> {
    open_resolved(resolve_all(devices)?, identify, deadline).await
}

/// Opens each resolved LU (all at once) and confirms its paths are one LU (see
/// [`open_all`]); the first LU that cannot be opened fails it.
pub async fn open_resolved(
    resolved: Vec<Resolved>,
    identify: bool,
    deadline: Instant,
) -> Result<Vec<Lu>, Failure> {
    open_each(resolved, identify, deadline)
        .await
        .into_iter()
        .collect()
}

/// Opens each resolved LU (all at once) and confirms its paths are one LU: each LU's own
/// result, so that a check reports every disk (one whose paths are all down among them).
pub async fn open_each(
    resolved: Vec<Resolved>,
    identify: bool,
    deadline: Instant,
) -> Vec<Result<Lu, Failure>> {
    open_named(
        resolved.into_iter().map(|r| (r, false)).collect(),
        identify,
        deadline,
    )
    .await
}

/// [`open_each`] of resolved LUs each with whether its resolution was re-validated (its paths
/// confirmed one LU by their serial numbers already: no identity is read again).
pub async fn open_named(
    resolved: Vec<(Resolved, bool)>,
    identify: bool,
    deadline: Instant,
) -> Vec<Result<Lu, Failure>> {
    let budget = deadline.saturating_duration_since(Instant::now());
    let opts = Options {
        identify_single: identify,
        ..options(budget)
    };
    let root = SysRoot::default();
    let root = &root;
    join_all(resolved.into_iter().map(|(r, confirmed)| async move {
        let opts = Options {
            paths_confirmed: confirmed,
            ..opts
        };
        let lu = Lu::open_resolved(r, root, opts, deadline)
            .await
            .map_err(|e| failure(&e))?;
        for d in &lu.dead {
            warn!(
                "{}: path {} does not answer ({}); continuing on {} other path(s)",
                lu.input().display(),
                d.info.name,
                d.error,
                lu.paths.len()
            );
        }
        Ok(lu)
    }))
    .await
}

/// What tells a LU apart from the others, the same on every node whatever the device names
/// and their order in DEVICE=: its LU designators (VPD page 0x83, those of the LU itself, not
/// of a target port) and its unit serial number (VPD page 0x80), sorted and joined.
pub fn order_key(id: &Identity) -> String {
    let mut d: Vec<String> = id.designators.iter().map(ToString::to_string).collect();
    d.sort();
    d.dedup();
    format!("{}|sn={}", d.join(","), id.serial.as_deref().unwrap_or(""))
}

/// The identity of an open LU: as the kernel cached it in sysfs at scan time (no command),
/// else read with INQUIRY through the first answering path.
pub async fn lu_identity(lu: &mut Lu, deadline: Instant) -> Result<Identity, Failure> {
    if let Some(id) = lu.identity.clone().or_else(|| {
        lu.paths
            .first()
            .and_then(|p| sysfs_identity(&p.info.name, &SysRoot::default()))
    }) {
        return Ok(id);
    }
    lu.any_path(async |p| p.identity(deadline).await)
        .await
        .map_err(|e| failure(&e))
}

/// Puts a resource's LUs (`lus`, with `key` their [`order_key`]) in the order every node takes
/// them in. Two LUs that cannot be told apart (the same disk named twice, or a target that
/// gives two LUs the same designators and serial) would let two nodes take them in different
/// orders and each win one: refused with exit 2.
pub fn arbitration_order<T>(
    lus: Vec<T>,
    key: impl Fn(&T) -> String,
    name: impl Fn(&T) -> String,
) -> Result<Vec<T>, Failure> {
    let mut keyed: Vec<(String, T)> = lus.into_iter().map(|l| (key(&l), l)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = keyed.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Failure::usage(format!(
            "{} and {} cannot be told apart (the same LU designators and serial number: {}): either they are one disk named twice in DEVICE=, or the target gives two disks the same identity; name each disk once, and give every disk its own serial number on the target",
            name(&w[0].1),
            name(&w[1].1),
            w[0].0
        )));
    }
    Ok(keyed.into_iter().map(|(_, l)| l).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

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
