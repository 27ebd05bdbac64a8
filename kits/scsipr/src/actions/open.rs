//! Opening a resource's disks: every device name resolved through sysfs before anything is
//! sent to any disk (a wrong name is a usage error, exit 2), then each LU opened with its
//! paths confirmed to be one LU, under a per-command timeout kept inside the action's budget.
//! [`arbitration_order`] is the order every node takes a resource of several disks in (see
//! [`super::restore`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lkh_common::Failure;
use log::warn;
use sg_persist::{Lu, Options, Resolved, SysRoot};

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
pub(super) fn wwid(r: &Resolved) -> Option<String> {
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
