//! The per-path persistent-reservation commands the policy in [`crate::actions`] uses, as two
//! small traits: [`Nexus`] (one I_T nexus) and [`Disk`] (one logical unit and its paths).
//! `sg-persist`'s [`ScsiPath`] and [`Lu`] implement them for real disks; the unit tests run
//! the same policy over an in-memory SPC-4 logical unit (`crate::model`).

use std::path::PathBuf;
use std::time::Instant;

use sg_persist::{Error, Keys, Lu, PrType, ReservationStatus, ScsiPath};

/// One I_T nexus: the commands restore, remove, quickCheck and recover send.
pub trait Nexus {
    /// The path's short name (`sdb`).
    fn label(&self) -> &str;
    /// The path's SCSI address (`H:C:T:L`), when known.
    fn hctl(&self) -> Option<&str>;
    /// What identifies the nexus: a new value means a new I_T nexus (another initiator port,
    /// host or target port), whose registration must be checked again.
    fn nexus_id(&self) -> String;
    /// `REGISTER` (old key → new key; conflicts when `old` is not this nexus's key).
    fn register(&mut self, old: u64, new: u64, deadline: Instant) -> Result<(), Error>;
    /// `REGISTER AND IGNORE EXISTING KEY`.
    fn register_ignore(&mut self, new: u64, deadline: Instant) -> Result<(), Error>;
    /// `RESERVE`.
    fn reserve(&mut self, key: u64, t: PrType, deadline: Instant) -> Result<(), Error>;
    /// `RELEASE`.
    fn release(&mut self, key: u64, t: PrType, deadline: Instant) -> Result<(), Error>;
    /// `PREEMPT`.
    fn preempt(&mut self, key: u64, victim: u64, t: PrType, deadline: Instant)
    -> Result<(), Error>;
    /// `PREEMPT AND ABORT`.
    fn preempt_abort(
        &mut self,
        key: u64,
        victim: u64,
        t: PrType,
        deadline: Instant,
    ) -> Result<(), Error>;
    /// `READ KEYS`.
    fn read_keys(&mut self, deadline: Instant) -> Result<Keys, Error>;
    /// `READ RESERVATION`.
    fn read_reservation(&mut self, deadline: Instant) -> Result<ReservationStatus, Error>;
}

/// A path that did not answer when its LU was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadPath {
    pub name: String,
    pub hctl: Option<String>,
    pub error: String,
}

/// One logical unit and the paths to it that answered when it was opened.
pub trait Disk {
    /// The path type.
    type Path: Nexus;
    /// The device name the admin gave.
    fn input(&self) -> PathBuf;
    /// The live paths.
    fn paths(&mut self) -> &mut [Self::Path];
    /// How many live paths.
    fn live(&self) -> usize;
    /// How many paths did not answer when the LU was opened.
    fn dead(&self) -> usize;
    /// The paths that did not answer when the LU was opened, and why.
    fn dead_paths(&self) -> Vec<DeadPath>;

    /// Runs `f` on the first path that gives an answer that is not a transport-level failure
    /// (conflicts and other device answers are returned as they are).
    fn any_path<T>(
        &mut self,
        mut f: impl FnMut(&mut Self::Path) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let input = self.input();
        let mut last = None;
        for p in self.paths() {
            match f(p) {
                Ok(v) => return Ok(v),
                Err(e) if sg_persist::device::path_failure(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(Error::NoWorkingPath {
            last: Box::new(last.unwrap_or(Error::Deadline {
                dev: input.clone(),
                cmd: "any command",
            })),
            input,
        })
    }
}

impl Nexus for ScsiPath {
    fn label(&self) -> &str {
        &self.info.name
    }
    fn hctl(&self) -> Option<&str> {
        self.info.hctl.as_deref()
    }
    fn nexus_id(&self) -> String {
        let hctl = self.info.hctl.as_deref().unwrap_or("?");
        let port = hctl
            .split(':')
            .next()
            .and_then(|h| initiator_port(h, "/sys"))
            .unwrap_or_default();
        format!("{}@{hctl}/{port}", self.info.name)
    }
    fn register(&mut self, old: u64, new: u64, deadline: Instant) -> Result<(), Error> {
        ScsiPath::register(self, old, new, deadline)
    }
    fn register_ignore(&mut self, new: u64, deadline: Instant) -> Result<(), Error> {
        ScsiPath::register_ignore(self, new, deadline)
    }
    fn reserve(&mut self, key: u64, t: PrType, deadline: Instant) -> Result<(), Error> {
        ScsiPath::reserve(self, key, t, deadline)
    }
    fn release(&mut self, key: u64, t: PrType, deadline: Instant) -> Result<(), Error> {
        ScsiPath::release(self, key, t, deadline)
    }
    fn preempt(
        &mut self,
        key: u64,
        victim: u64,
        t: PrType,
        deadline: Instant,
    ) -> Result<(), Error> {
        ScsiPath::preempt(self, key, victim, t, deadline)
    }
    fn preempt_abort(
        &mut self,
        key: u64,
        victim: u64,
        t: PrType,
        deadline: Instant,
    ) -> Result<(), Error> {
        ScsiPath::preempt_abort(self, key, victim, t, deadline)
    }
    fn read_keys(&mut self, deadline: Instant) -> Result<Keys, Error> {
        ScsiPath::read_keys(self, deadline)
    }
    fn read_reservation(&mut self, deadline: Instant) -> Result<ReservationStatus, Error> {
        ScsiPath::read_reservation(self, deadline)
    }
}

impl Disk for Lu {
    type Path = ScsiPath;
    fn input(&self) -> PathBuf {
        self.resolved.input.clone()
    }
    fn paths(&mut self) -> &mut [ScsiPath] {
        &mut self.paths
    }
    fn live(&self) -> usize {
        self.paths.len()
    }
    fn dead(&self) -> usize {
        self.dead.len()
    }
    fn dead_paths(&self) -> Vec<DeadPath> {
        self.dead
            .iter()
            .map(|d| DeadPath {
                name: d.info.name.clone(),
                hctl: d.info.hctl.clone(),
                error: d.error.to_string(),
            })
            .collect()
    }
}

/// The initiator port of SCSI host `host` as sysfs shows it: the FC port name (virtual Fibre
/// Channel: it changes with a WWPN flip), or the iSCSI initiator name of the host's session.
/// `None` for transports that show neither (the host and target numbers still tell nexuses
/// apart there).
fn initiator_port(host: &str, sys: &str) -> Option<String> {
    let read = |p: String| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    if let Some(wwpn) = read(format!("{sys}/class/fc_host/host{host}/port_name")) {
        return Some(wwpn);
    }
    let dir = std::fs::read_dir(format!("{sys}/class/scsi_host/host{host}/device")).ok()?;
    for e in dir.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with("session") {
            let name = read(format!("{sys}/class/iscsi_session/{n}/initiatorname"));
            let isid = read(format!("{sys}/class/iscsi_session/{n}/isid")).unwrap_or_default();
            return name.map(|s| format!("{s},{isid}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initiator_port_from_sysfs() {
        let d = std::env::temp_dir().join(format!("lkh-pr-sys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("class/fc_host/host3")).unwrap();
        std::fs::write(
            d.join("class/fc_host/host3/port_name"),
            "0xc003ff0000010001\n",
        )
        .unwrap();
        std::fs::create_dir_all(d.join("class/scsi_host/host4/device/session7")).unwrap();
        std::fs::create_dir_all(d.join("class/iscsi_session/session7")).unwrap();
        std::fs::write(
            d.join("class/iscsi_session/session7/initiatorname"),
            "iqn.x:a\n",
        )
        .unwrap();
        let sys = d.to_str().unwrap();
        assert_eq!(
            initiator_port("3", sys).as_deref(),
            Some("0xc003ff0000010001")
        );
        assert_eq!(initiator_port("4", sys).as_deref(), Some("iqn.x:a,"));
        assert_eq!(initiator_port("5", sys), None);
        let _ = std::fs::remove_dir_all(&d);
    }
}
