//! The kit's settings, read from lkh-common's validated configuration, and this node's
//! reservation key (`<conf dir>/node.key`, generated once).
//!
//! Everything here is checked before any command reaches a disk: a bad key, type or device
//! name is a usage error (exit 2) and nothing is sent.
//!
//! Whoever can write `node.key` can give this node the peer's key and so disable fencing:
//! it is opened as lkh-common's [`trusted`] says (no link, root's, not writable by group or
//! others, nor any directory above it), or refused with exit 2. Readable by others is
//! accepted: a key is no secret (every initiator reads the registered keys with PERSISTENT
//! RESERVE IN); the file is created 0600 all the same.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lkh_common::trusted;
use lkh_common::{Config, Failure, HookCtx};
use sg_persist::PrType;

/// First two bytes of every generated key: "LK", so our registrations are recognisable in
/// `sg_persist --read-keys` output next to other software's keys.
pub const KEY_PREFIX: u64 = 0x4c4b;
/// Name of the node key file in the configuration directory.
pub const NODE_KEY_FILE: &str = "node.key";

/// This node's key file: `<conf dir>/node.key` (`LKHELPERS_CONF_DIR`, default /etc/lkhelpers).
pub fn node_key_path() -> std::path::PathBuf {
    lkh_common::Sources::from_env().conf_dir.join(NODE_KEY_FILE)
}
/// The key table's TYPE default: only registrants may write, one of them holds.
pub const DEFAULT_TYPE: &str = "write-exclusive-registrants-only";

/// What to do when the watcher finds that another node took our reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFenced {
    /// Reboot this node at once through the kernel, like lkscsid with SCSIHALT=TRUE.
    Halt,
    /// Log an error for LifeKeeper to act on, stop watching that resource.
    Event,
    /// Log a warning only.
    None,
}

/// Validated settings of one resource.
#[derive(Clone, Debug)]
pub struct Settings {
    pub devices: Vec<PathBuf>,
    pub pr_type: PrType,
    pub on_fenced: OnFenced,
    pub failfast: Duration,
    pub conf_dir: PathBuf,
    /// `KEY=` when configured; else the node key is read (or created) on demand.
    pub configured_key: Option<u64>,
    /// The node key as read (and checked) with the settings, when no `KEY=` is configured.
    pub node_key: Option<u64>,
    /// A LifeKeeper resource: its holder defends the disk and a restore that finds another
    /// holder challenges it. Not under Pacemaker, where fencing (`fence_lkhscsipr`)
    /// arbitrates.
    pub arbitrate: bool,
}

/// ON_FENCED when it is set, else what SCSIHALT says: halt, or an event.
fn on_fenced(config: &Config) -> OnFenced {
    match config.get("ON_FENCED") {
        Some("halt") => OnFenced::Halt,
        Some("event") => OnFenced::Event,
        Some("none") => OnFenced::None,
        _ => {
            if config.flag("SCSIHALT").unwrap_or_default() {
                OnFenced::Halt
            } else {
                OnFenced::Event
            }
        }
    }
}

/// The longest defense interval, whatever FAILFASTTIMER says.
pub const DEFENSE_MAX: Duration = Duration::from_secs(2);
/// What a challenger waits beyond two defense intervals: a defender's commands and its
/// scheduling.
pub const DEFENSE_MARGIN: Duration = Duration::from_secs(1);
/// What restore needs beyond the challenge window: the takeover itself.
pub const TAKEOVER_BUDGET: Duration = Duration::from_secs(2);

/// Parses a reservation key: hex, optional `0x`, 1 to 16 digits, not zero.
pub fn parse_key(raw: &str) -> Result<u64, String> {
    let t = raw.trim();
    let digits = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "key {raw:?} is not hexadecimal: write up to 16 hex digits, e.g. 0x4c4b00000000a1"
        ));
    }
    if digits.len() > 16 {
        return Err(format!(
            "key {raw:?} is longer than 8 bytes: a reservation key has at most 16 hex digits"
        ));
    }
    match u64::from_str_radix(digits, 16) {
        Ok(0) => Err(
            "key 0 is not a valid reservation key (0 means \"unregister\"): choose a non-zero key"
                .into(),
        ),
        Ok(k) => Ok(k),
        Err(e) => Err(format!("key {raw:?}: {e}")),
    }
}

/// Formats a key the way `sg_persist` prints it.
pub fn fmt_key(k: u64) -> String {
    format!("0x{k:016x}")
}

impl Settings {
    /// Reads and checks the settings of a hook context.
    pub fn from_ctx(ctx: &HookCtx) -> Result<Settings, Failure> {
        let conf = ctx.conf_file();
        let devices: Vec<PathBuf> = ctx
            .config
            .list("DEVICE")
            .into_iter()
            .map(PathBuf::from)
            .collect();
        if devices.is_empty() {
            return Err(Failure::usage(format!(
                "no DEVICE set in {}: add DEVICE=/dev/disk/by-id/... (the shared disk, or several separated by spaces)",
                conf.display()
            )));
        }
        // TYPE, SCSIHALT and FAILFASTTIMER have their defaults in the key table (`crate::SPEC`),
        // which the configuration starts from: no default is restated here
        let pr_type: PrType = ctx
            .config
            .get("TYPE")
            .unwrap_or_default()
            .parse()
            .map_err(|e| Failure::usage(format!("TYPE in {}: {e}", conf.display())))?;
        let configured_key = match ctx.config.get("KEY") {
            Some(k) => Some(
                parse_key(k)
                    .map_err(|e| Failure::usage(format!("KEY in {}: {e}", conf.display())))?,
            ),
            None => None,
        };
        let on_fenced = on_fenced(&ctx.config);
        // at least 1 by the table's bounds; kept so here too: a 0 s defense interval would spin
        let failfast =
            Duration::from_secs(ctx.config.uint("FAILFASTTIMER").unwrap_or_default().max(1));
        let arbitrate = !ctx.ocf;
        // checked now, with the rest, before anything reaches a disk
        let node_key = match configured_key {
            Some(_) => None,
            None => read_node_key(&ctx.sources.conf_dir.join(NODE_KEY_FILE))?,
        };
        Ok(Settings {
            node_key,
            devices,
            pr_type,
            on_fenced,
            failfast,
            conf_dir: ctx.sources.conf_dir.clone(),
            configured_key,
            arbitrate,
        })
    }

    /// restore and `validate`: a LifeKeeper resource's TIMEOUT must hold the challenge window
    /// and a takeover after it, or a restore that finds another holder could never finish.
    pub fn check_timeout(&self, ctx: &HookCtx) -> Result<(), Failure> {
        let window = self.challenge_window();
        let timeout = ctx.config.timeout();
        if !self.arbitrate || timeout >= window + TAKEOVER_BUDGET {
            return Ok(());
        }
        Err(Failure::usage(format!(
            "TIMEOUT={} in {} cannot hold a takeover: a restore that finds another node holding the disk waits the challenge window ({} s: twice the defense interval min(FAILFASTTIMER, 2 s), plus 1 s) before it takes over; set TIMEOUT to at least {} s",
            timeout.as_secs(),
            ctx.conf_file().display(),
            window.as_secs(),
            (window + TAKEOVER_BUDGET).as_secs()
        )))
    }

    /// How often the holder's defender (`watch`) reads the keys of each disk it holds.
    pub fn defense_interval(&self) -> Duration {
        defense_interval(self.failfast)
    }

    /// How long a restore that finds another node holding the disk waits for that holder to
    /// defend it before it takes over (see [`challenge_window`]).
    pub fn challenge_window(&self) -> Duration {
        challenge_window(self.failfast)
    }

    /// The key to use; `create` makes the node key file when it does not exist yet.
    /// `Ok(None)`: no key configured and no node key yet (this node never registered).
    pub fn key(&self, create: bool) -> Result<Option<u64>, Failure> {
        if let Some(k) = self.configured_key.or(self.node_key) {
            return Ok(Some(k));
        }
        let path = self.conf_dir.join(NODE_KEY_FILE);
        if create {
            node_key_or_create(&path).map(Some)
        } else {
            read_node_key(&path)
        }
    }
}

/// The defense interval: FAILFASTTIMER, at most 2 s (cheap: one READ KEYS per held disk).
pub fn defense_interval(failfast: Duration) -> Duration {
    failfast.min(DEFENSE_MAX)
}

/// The challenge window: two defense intervals plus a margin. A live holder's defender looks
/// at least once in any interval, so within the window it has seen and removed the
/// challenger's registration; a holder that did not (dead, frozen, cut off the disk) loses.
/// The nodes of a cluster must agree on FAILFASTTIMER (LifeKeeper's tunable, usually set the
/// same everywhere): the window is the challenger's, the interval the holder's.
pub fn challenge_window(failfast: Duration) -> Duration {
    2 * defense_interval(failfast) + DEFENSE_MARGIN
}

/// Reads the node key; `Ok(None)` when the file does not exist. A link, a file others can
/// write or one in such a directory is refused (exit 2).
pub fn read_node_key(path: &Path) -> Result<Option<u64>, Failure> {
    let Some(bytes) = trusted::read_file(path)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    parse_key(text.trim()).map(Some).map_err(|e| {
        Failure::usage(format!(
            "{}: {e}; delete the file to have a new key generated (only while no resource is in service on this node)",
            path.display()
        ))
    })
}

/// A new random key: prefix "LK", then 48 random bits from `/dev/urandom`, never zero.
pub fn generate_key() -> Result<u64, Failure> {
    let mut f = fs::File::open("/dev/urandom")
        .map_err(|e| Failure::failed(format!("cannot open /dev/urandom: {e}")))?;
    loop {
        let mut b = [0u8; 6];
        f.read_exact(&mut b)
            .map_err(|e| Failure::failed(format!("cannot read /dev/urandom: {e}")))?;
        let low = b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
        if low != 0 {
            return Ok((KEY_PREFIX << 48) | low);
        }
    }
}

/// Reads the node key, or creates it atomically (mode 0600, written to a temporary file,
/// then linked into place so that two concurrent first runs agree on one key). The directory
/// is made (0755) if missing, and checked like everything a hook trusts.
pub fn node_key_or_create(path: &Path) -> Result<u64, Failure> {
    if let Some(k) = read_node_key(path)? {
        return Ok(k);
    }
    let (dir, name) = trusted::split(path)?;
    let d = trusted::Dir::open(dir, Some(0o755))?
        .ok_or_else(|| Failure::failed(format!("{}: vanished", dir.display())))?;
    let key = generate_key()?;
    let created = d
        .create_new(name, format!("{}\n", fmt_key(key)).as_bytes(), 0o600)
        .map_err(|f| {
            Failure::new(
                f.exit,
                format!(
                    "cannot create the node key: {f}; check that the directory is writable by root"
                ),
            )
        })?;
    if created {
        log::info!(
            "generated this node's reservation key {} in {}",
            fmt_key(key),
            path.display()
        );
        return Ok(key);
    }
    read_node_key(path)?
        .ok_or_else(|| Failure::failed(format!("{} vanished while being created", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults come from the key table alone: TYPE write-exclusive-registrants-only,
    /// FAILFASTTIMER 5, SCSIHALT on, so ON_FENCED halts unless SCSIHALT is off.
    #[test]
    fn defaults_come_from_the_key_table() {
        let keys = crate::SPEC.keys;
        let mut c = Config::defaults(keys);
        assert_eq!(
            c.get("TYPE").unwrap().parse::<PrType>(),
            Ok(PrType::WriteExclusiveRegistrantsOnly)
        );
        assert_eq!(c.uint("FAILFASTTIMER"), Some(5));
        assert_eq!(on_fenced(&c), OnFenced::Halt);
        c.set(keys, "SCSIHALT", "0").unwrap();
        assert_eq!(on_fenced(&c), OnFenced::Event);
        c.set(keys, "ON_FENCED", "none").unwrap();
        assert_eq!(on_fenced(&c), OnFenced::None);
        c.set(keys, "ON_FENCED", "halt").unwrap();
        assert_eq!(on_fenced(&c), OnFenced::Halt);
    }

    #[test]
    fn keys_parse_and_refuse() {
        assert_eq!(parse_key("0x4c4b01"), Ok(0x4c4b01));
        assert_eq!(parse_key("ABCDEF"), Ok(0xabcdef));
        assert_eq!(parse_key("ffffffffffffffff"), Ok(u64::MAX));
        assert!(parse_key("0").unwrap_err().contains("key 0"));
        assert!(parse_key("0x0000").is_err());
        assert!(
            parse_key("0x1ffffffffffffffff")
                .unwrap_err()
                .contains("8 bytes")
        );
        assert!(parse_key("xyz").is_err());
        assert!(parse_key("").is_err());
        assert!(parse_key("0x").is_err());
        assert_eq!(fmt_key(0xaa), "0x00000000000000aa");
    }

    #[test]
    fn node_key_is_created_once() {
        let dir = std::env::temp_dir().join(format!("lkh-scsipr-key-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join(NODE_KEY_FILE);
        assert_eq!(read_node_key(&path).unwrap(), None);
        let k = node_key_or_create(&path).unwrap();
        assert_eq!(k >> 48, KEY_PREFIX);
        assert_ne!(k & 0xffff_ffff_ffff, 0);
        assert_eq!(node_key_or_create(&path).unwrap(), k);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        fs::write(&path, "0\n").unwrap();
        assert_eq!(
            read_node_key(&path).unwrap_err().exit,
            lkh_common::Exit::Usage
        );
        let _ = fs::remove_dir_all(&dir);
    }

    /// Whoever could write node.key could give this node the peer's key: a link, a
    /// group-writable file or directory is refused (exit 2), a world-readable one accepted.
    #[test]
    fn node_key_others_could_steer_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
        let dir = std::env::temp_dir().join(format!("lkh-scsipr-keyperm-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        mode(&dir, 0o755);
        let path = dir.join(NODE_KEY_FILE);
        let peer = dir.join("peer.key");
        fs::write(&peer, "0x4c4b000000000002\n").unwrap();
        mode(&peer, 0o644);
        std::os::unix::fs::symlink(&peer, &path).unwrap();
        for f in [
            read_node_key(&path).unwrap_err(),
            node_key_or_create(&path).unwrap_err(),
        ] {
            assert_eq!(f.exit, lkh_common::Exit::Usage);
            assert!(f.message.contains("symbolic link"), "{f}");
        }
        fs::remove_file(&path).unwrap();
        fs::write(&path, "0x4c4b000000000001\n").unwrap();
        mode(&path, 0o664);
        let f = read_node_key(&path).unwrap_err();
        assert!(f.message.contains("chmod go-w"), "{f}");
        mode(&path, 0o644);
        assert_eq!(read_node_key(&path).unwrap(), Some(0x4c4b000000000001));
        mode(&dir, 0o1777);
        let f = read_node_key(&path).unwrap_err();
        assert!(f.message.contains("chmod 0755"), "{f}");
        let _ = fs::remove_dir_all(&dir);
    }
}
