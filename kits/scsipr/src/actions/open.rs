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
pub fn lu_identity(lu: &mut Lu, deadline: Instant) -> Result<Identity, Failure> {
    if let Some(id) = lu
        .paths
        .first()
        .and_then(|p| sysfs_identity(&p.info.name, &SysRoot::default()))
    {
        return Ok(id);
    }
    lu.any_path(|p| p.identity(deadline))
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
