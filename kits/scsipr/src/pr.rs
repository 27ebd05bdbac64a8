//! The per-path persistent-reservation commands the policy in [`crate::actions`] uses, as two
//! small traits: [`Nexus`] (one I_T nexus) and [`Disk`] (one logical unit and its paths).
//! `sg-persist`'s [`ScsiPath`] and [`Lu`] implement them for real disks; the unit tests run
//! the same policy over an in-memory SPC-4 logical unit (`crate::model`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use sg_persist::parse::TransportId;
use sg_persist::{Error, FullStatus, Keys, Lu, PrType, ReservationStatus, ScsiPath, SysRoot};

/// An I_T nexus as READ FULL STATUS names it: the initiator port and the target port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub initiator: Initiator,
    /// The relative target port identifier (VPD page 0x83 of the path).
    pub target_port: u16,
}

/// An initiator port, as this node knows its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initiator {
    /// Fibre Channel: the port's WWPN.
    Fc(u64),
    /// iSCSI: the initiator name and the session's ISID (hex, as sysfs shows it).
    Iscsi { name: String, isid: Option<String> },
    /// Any other transport: the TransportID's bytes (the unit tests' model).
    #[cfg_attr(not(test), allow(dead_code))]
    Other(Vec<u8>),
}

impl Initiator {
    /// Whether a registration READ FULL STATUS reports through initiator `tid` can be this
    /// initiator port's (the target port aside; see [`Port::matches`]).
    pub fn may_be(&self, tid: &TransportId) -> bool {
        Port {
            initiator: self.clone(),
            target_port: 0,
        }
        .matches(tid, 0, true)
    }
}

impl Port {
    /// Whether a registration READ FULL STATUS reports through initiator `tid` and relative
    /// target port `rtp` (any port when `all_tg_pt`) belongs to this I_T nexus. An iSCSI
    /// TransportID without an ISID (format 00b) names only the initiator: it matches every
    /// session of that name to the port, which the caller must not take for proof when this
    /// node has several.
    pub fn matches(&self, tid: &TransportId, rtp: u16, all_tg_pt: bool) -> bool {
        if !all_tg_pt && rtp != self.target_port {
            return false;
        }
        match (&self.initiator, tid) {
            (Initiator::Fc(a), TransportId::FibreChannel(b)) => a == b,
            (Initiator::Iscsi { name, isid }, TransportId::Iscsi(text)) => {
                let lower = text.to_ascii_lowercase();
                let (n, i) = match lower.split_once(",i,0x") {
                    Some((n, i)) => (n, Some(i)),
                    None => (lower.as_str(), None),
                };
                let same_isid = match (i, isid) {
                    (None, _) => true,
                    (Some(a), Some(b)) => hex_value(a).is_some() && hex_value(a) == hex_value(b),
                    (Some(_), None) => false,
                };
                n == name.to_ascii_lowercase() && same_isid
            }
            (Initiator::Other(a), TransportId::Other { bytes, .. }) => a == bytes,
            _ => false,
        }
    }
}

fn hex_value(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

/// One I_T nexus: the commands restore, remove, quickCheck and recover send. The commands are
/// futures (`sg_persist::exec`): a caller runs those of many nexuses and LUs at once.
#[allow(async_fn_in_trait)]
pub trait Nexus {
    /// The path's short name (`sdb`).
    fn label(&self) -> &str;
    /// The path's SCSI address (`H:C:T:L`), when known.
    fn hctl(&self) -> Option<&str>;
    /// What identifies the nexus: a new value means a new I_T nexus (another initiator port,
    /// host or target port), whose registration must be checked again.
    fn nexus_id(&self) -> String;
    /// The initiator port of the nexus, when this node can tell (see [`Port`]).
    fn initiator(&self) -> Option<Initiator>;
    /// The nexus as READ FULL STATUS names it, when this node can tell (see [`Port`]).
    fn port(&self) -> Option<Port>;
    /// `REGISTER` (old key → new key; conflicts when `old` is not this nexus's key).
    async fn register(&mut self, old: u64, new: u64, deadline: Instant) -> Result<(), Error>;
    /// `REGISTER AND IGNORE EXISTING KEY`.
    async fn register_ignore(&mut self, new: u64, deadline: Instant) -> Result<(), Error>;
    /// `RESERVE`.
    async fn reserve(&mut self, key: u64, t: PrType, deadline: Instant) -> Result<(), Error>;
    /// `RELEASE`.
    async fn release(&mut self, key: u64, t: PrType, deadline: Instant) -> Result<(), Error>;
    /// `PREEMPT`.
    async fn preempt(
        &mut self,
        key: u64,
        victim: u64,
        t: PrType,
        deadline: Instant,
    ) -> Result<(), Error>;
    /// `PREEMPT AND ABORT`.
    async fn preempt_abort(
        &mut self,
        key: u64,
        victim: u64,
        t: PrType,
        deadline: Instant,
    ) -> Result<(), Error>;
    /// `READ KEYS`.
    async fn read_keys(&mut self, deadline: Instant) -> Result<Keys, Error>;
    /// `READ RESERVATION`.
    async fn read_reservation(&mut self, deadline: Instant) -> Result<ReservationStatus, Error>;
    /// `READ FULL STATUS`.
    async fn read_full_status(&mut self, deadline: Instant) -> Result<FullStatus, Error>;
}

/// A path that did not answer when its LU was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadPath {
    pub name: String,
    pub hctl: Option<String>,
    pub error: String,
}

/// One logical unit and the paths to it that answered when it was opened.
#[allow(async_fn_in_trait)]
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
    /// Whether the target answers READ FULL STATUS (`None`: not known yet), which this
    /// process learns at the first try and the records keep.
    fn full_status(&mut self) -> &mut Option<bool>;

    /// Runs `f` on the first path that gives an answer that is not a transport-level failure
    /// (conflicts and other device answers are returned as they are).
    async fn any_path<T>(
        &mut self,
        mut f: impl AsyncFnMut(&mut Self::Path) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let input = self.input();
        let mut last = None;
        for p in self.paths() {
            match f(p).await {
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
        let port = host_of(hctl)
            .and_then(|h| host_port(h).map(|p| p.text))
            .unwrap_or_default();
        format!("{}@{hctl}/{port}", self.info.name)
    }
    fn initiator(&self) -> Option<Initiator> {
        host_port(host_of(self.info.hctl.as_deref()?)?)?.initiator
    }
    fn port(&self) -> Option<Port> {
        let initiator = self.initiator()?;
        let target_port =
            sg_persist::path::sysfs_relative_port(&self.info.name, &SysRoot::default())?;
        Some(Port {
            initiator,
            target_port,
        })
    }
    async fn register(&mut self, old: u64, new: u64, deadline: Instant) -> Result<(), Error> {
        ScsiPath::register(self, old, new, deadline).await
    }
    async fn register_ignore(&mut self, new: u64, deadline: Instant) -> Result<(), Error> {
        ScsiPath::register_ignore(self, new, deadline).await
    }
    async fn reserve(&mut self, key: u64, t: PrType, deadline: Instant) -> Result<(), Error> {
        ScsiPath::reserve(self, key, t, deadline).await
    }
    async fn release(&mut self, key: u64, t: PrType, deadline: Instant) -> Result<(), Error> {
        ScsiPath::release(self, key, t, deadline).await
    }
    async fn preempt(
        &mut self,
        key: u64,
        victim: u64,
        t: PrType,
        deadline: Instant,
    ) -> Result<(), Error> {
        ScsiPath::preempt(self, key, victim, t, deadline).await
    }
    async fn preempt_abort(
        &mut self,
        key: u64,
        victim: u64,
        t: PrType,
        deadline: Instant,
    ) -> Result<(), Error> {
        ScsiPath::preempt_abort(self, key, victim, t, deadline).await
    }
    async fn read_keys(&mut self, deadline: Instant) -> Result<Keys, Error> {
        ScsiPath::read_keys(self, deadline).await
    }
    async fn read_reservation(&mut self, deadline: Instant) -> Result<ReservationStatus, Error> {
        ScsiPath::read_reservation(self, deadline).await
    }
    async fn read_full_status(&mut self, deadline: Instant) -> Result<FullStatus, Error> {
        ScsiPath::read_full_status(self, deadline).await
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
    fn full_status(&mut self) -> &mut Option<bool> {
        &mut self.full_status
    }
}

/// The SCSI host number of an `H:C:T:L` address.
fn host_of(hctl: &str) -> Option<&str> {
    hctl.split(':').next().filter(|h| !h.is_empty())
}

/// What this node knows of the initiator port of one SCSI host.
#[derive(Debug, Clone)]
struct HostPort {
    /// As the records show it (see [`Nexus::nexus_id`]).
    text: String,
    initiator: Option<Initiator>,
}

thread_local! {
    /// Per SCSI host, read from sysfs once per process (many LUs share a host).
    static HOSTS: RefCell<BTreeMap<String, Option<HostPort>>> = const { RefCell::new(BTreeMap::new()) };
}

/// Forgets what this process read of the SCSI hosts' initiator ports (`watch`, which runs for
/// days, reads them afresh at every tick: a WWPN changes at a live migration).
pub fn forget_hosts() {
    HOSTS.with(|h| h.borrow_mut().clear());
}

fn host_port(host: &str) -> Option<HostPort> {
    HOSTS.with(|h| {
        h.borrow_mut()
            .entry(host.to_owned())
            .or_insert_with(|| initiator_port(host, "/sys"))
            .clone()
    })
}

/// The initiator port of SCSI host `host` as sysfs shows it: the FC port name (virtual Fibre
/// Channel: it changes with a WWPN flip), or the iSCSI initiator name of the host's session.
/// `None` for transports that show neither (the host and target numbers still tell nexuses
/// apart there).
fn initiator_port(host: &str, sys: &str) -> Option<HostPort> {
    let read = |p: String| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    if let Some(wwpn) = read(format!("{sys}/class/fc_host/host{host}/port_name")) {
        let initiator = hex_value(&wwpn).map(Initiator::Fc);
        return Some(HostPort {
            text: wwpn,
            initiator,
        });
    }
    let dir = std::fs::read_dir(format!("{sys}/class/scsi_host/host{host}/device")).ok()?;
    for e in dir.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with("session") {
            let name = read(format!("{sys}/class/iscsi_session/{n}/initiatorname"))?;
            let isid = read(format!("{sys}/class/iscsi_session/{n}/isid"));
            return Some(HostPort {
                text: format!("{name},{}", isid.as_deref().unwrap_or_default()),
                initiator: Some(Initiator::Iscsi { name, isid }),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_matches_only_its_own_registration() {
        let fc = Port {
            initiator: Initiator::Fc(0xc003_ff00_0001_0001),
            target_port: 2,
        };
        assert!(fc.matches(&TransportId::FibreChannel(0xc003_ff00_0001_0001), 2, false));
        assert!(!fc.matches(&TransportId::FibreChannel(0xc003_ff00_0001_0001), 1, false));
        assert!(fc.matches(&TransportId::FibreChannel(0xc003_ff00_0001_0001), 1, true));
        assert!(!fc.matches(&TransportId::FibreChannel(0xc003_ff00_0001_0002), 2, false));
        let name = "iqn.2026-01.test.lkh:node-a".to_owned();
        let with_isid = |isid: Option<&str>| Port {
            initiator: Initiator::Iscsi {
                name: name.clone(),
                isid: isid.map(str::to_owned),
            },
            target_port: 1,
        };
        let tid = TransportId::Iscsi("IQN.2026-01.test.lkh:node-a,i,0x00023d000001".into());
        assert!(with_isid(Some("00023d000001")).matches(&tid, 1, false));
        assert!(with_isid(Some("23d000001")).matches(&tid, 1, false));
        assert!(!with_isid(Some("00023d000003")).matches(&tid, 1, false));
        // a session whose ISID this node cannot read (no sysfs attribute) proves nothing
        assert!(!with_isid(None).matches(&tid, 1, false));
        // a TransportID without ISID names the initiator only
        let bare = TransportId::Iscsi(name.clone());
        assert!(with_isid(None).matches(&bare, 1, false));
        assert!(!with_isid(None).matches(&TransportId::Iscsi("iqn.other".into()), 1, false));
        assert!(!with_isid(None).matches(&TransportId::FibreChannel(1), 1, false));
    }

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
        let p = initiator_port("3", sys).unwrap();
        assert_eq!(p.text, "0xc003ff0000010001");
        assert_eq!(p.initiator, Some(Initiator::Fc(0xc003ff0000010001)));
        let p = initiator_port("4", sys).unwrap();
        assert_eq!(p.text, "iqn.x:a,");
        assert_eq!(
            p.initiator,
            Some(Initiator::Iscsi {
                name: "iqn.x:a".into(),
                isid: None
            })
        );
        assert!(initiator_port("5", sys).is_none());
        let _ = std::fs::remove_dir_all(&d);
    }
}
