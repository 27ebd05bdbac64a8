//! Hyper-V's guest parameters: which physical host this VM runs on, as the host says.
//!
//! A Hyper-V host pushes "guest parameters" to each VM through the Data Exchange (KVP)
//! integration service: `HostName`, `PhysicalHostName`, `PhysicalHostNameFullyQualified`,
//! `VirtualMachineName`, `VirtualMachineId` and a few `HostingSystem…` items. In a Linux guest
//! the kernel's `hv_utils` driver hands them to `hv_kvp_daemon` (RHEL's `hypervkvpd`), which
//! keeps them in pool 3 (`KVP_POOL_AUTO_EXTERNAL` in the kernel's `hyperv.h`),
//! `/var/lib/hyperv/.kvp_pool_3`: an array of records, each a 512-byte key and a 2048-byte
//! value, NUL-terminated UTF-8 (the kernel converts the host's UTF-16). After a live migration
//! the new host sends its own items, so the pool follows the VM — while the daemon runs.
//! Azure's hosts send the same items (naming Azure's host), so the pool says "Hyper-V family",
//! never "on premises" or "Azure".
//!
//! The pool is parsed defensively: a length that is not a whole number of records (the rest is
//! ignored and noted), a key or value without its NUL (read to the end of its field), bytes
//! that are not UTF-8 or are control characters (kept as `\xNN`, so a name cannot forge a
//! line), records without a key (skipped), a repeated key (the first counts, as the daemon's
//! own lookups do). It is read with lkh-common's `trusted` rules — every directory from `/`
//! and the file itself opened without following links, root's (or the caller's when not
//! root), not writable by group or others, a regular file, at most 1 MiB — because the host
//! name it gives decides what `check-cluster` and `doctor` say; the same rules apply under
//! `--sysroot`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::procs;

/// The pool's directory, relative to the root.
pub const POOL_DIR: &str = "var/lib/hyperv";
/// Pool 3: the items the host sends about itself and the VM.
pub const GUEST_PARAMETERS: &str = ".kvp_pool_3";
/// Bytes of a key field (`HV_KVP_EXCHANGE_MAX_KEY_SIZE`).
pub const KEY_LEN: usize = 512;
/// Bytes of a value field (`HV_KVP_EXCHANGE_MAX_VALUE_SIZE`).
pub const VALUE_LEN: usize = 2048;
/// Bytes of one record.
pub const RECORD_LEN: usize = KEY_LEN + VALUE_LEN;
/// Process names of the KVP daemon: upstream and Debian/SUSE/Ubuntu, and RHEL's.
pub const DAEMONS: &[&str] = &["hv_kvp_daemon", "hypervkvpd"];
/// VMBus class id of the Data Exchange (KVP) integration service (`HV_KVP_GUID`).
pub const KVP_CLASS_ID: &str = "a9a0f4e7-5a45-4d96-b827-8a841e8c03e6";

/// The host's name items, best first: fully qualified, then NetBIOS, then `HostName`.
pub const HOST_KEYS: [&str; 3] = [
    "PhysicalHostNameFullyQualified",
    "PhysicalHostName",
    "HostName",
];
pub const VM_NAME_KEY: &str = "VirtualMachineName";
pub const VM_ID_KEY: &str = "VirtualMachineId";

/// What to install when the daemon is missing.
pub const INSTALL: &str = "install the Hyper-V daemons (package hyperv-daemons on RHEL, Rocky, AlmaLinux, Oracle Linux and Debian; hyper-v on SLES; linux-cloud-tools-virtual on Ubuntu) and start its KVP service (hypervkvpd, hv-kvp-daemon or hv_kvp_daemon)";
/// What to enable on the host when it does not offer the service.
pub const ENABLE_ON_HOST: &str = "on the Hyper-V host enable the VM's Data Exchange service: Enable-VMIntegrationService -VMName <vm> -Name 'Key-Value Pair Exchange'";

/// One key and value, as text (`\xNN` for bytes that are not printable UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    pub value: String,
}

/// A parsed pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pool {
    pub records: Vec<Record>,
    /// What was odd about the bytes, one line each.
    pub notes: Vec<String>,
}

impl Pool {
    /// The value of the first record named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.records
            .iter()
            .find(|r| r.key == key)
            .map(|r| r.value.as_str())
    }
}

/// The field's text up to its first NUL (all of it when there is none), escaped; and whether
/// it was cut short by the field's end, and whether anything needed escaping.
fn field(bytes: &[u8]) -> (String, bool, bool) {
    let (text, unterminated) = match bytes.iter().position(|b| *b == 0) {
        Some(n) => (&bytes[..n], false),
        None => (bytes, true),
    };
    let shown = escape(text);
    let odd = shown.len() != text.len() || shown.as_bytes() != text;
    (shown, unterminated, odd)
}

/// Printable UTF-8 kept; every other byte, and control characters (newline and tab included),
/// written `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            } else if c == '\\' {
                out.push_str("\\x5c");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Parses a pool file's bytes.
pub fn parse(bytes: &[u8]) -> Pool {
    let mut pool = Pool::default();
    let whole = bytes.len() / RECORD_LEN;
    let rest = bytes.len() % RECORD_LEN;
    if rest != 0 {
        pool.notes.push(format!(
            "the pool is {} bytes, not a whole number of {RECORD_LEN}-byte records: the last {rest} bytes were ignored (the daemon was writing, or this is not a pool)",
            bytes.len()
        ));
    }
    for (i, rec) in bytes.chunks_exact(RECORD_LEN).take(whole).enumerate() {
        let (key, key_cut, key_odd) = field(&rec[..KEY_LEN]);
        let (value, value_cut, value_odd) = field(&rec[KEY_LEN..]);
        let n = i + 1;
        let name = lkh_common::logging::shown(&key, 64);
        if key.is_empty() {
            if !value.is_empty() {
                pool.notes
                    .push(format!("record {n} has a value but no key: skipped"));
            }
            continue;
        }
        for (what, cut, odd) in [("key", key_cut, key_odd), ("value", value_cut, value_odd)] {
            if cut {
                pool.notes.push(format!(
                    "record {n} ({name}): the {what} has no terminating NUL; read to the end of its field"
                ));
            }
            if odd {
                pool.notes.push(format!(
                    "record {n} ({name}): the {what} holds bytes that are not printable UTF-8, shown as \\xNN"
                ));
            }
        }
        if pool.get(&key).is_some() {
            pool.notes.push(format!(
                "record {n}: {name} appears again; the first one counts"
            ));
            continue;
        }
        pool.records.push(Record { key, value });
    }
    pool
}

/// Whether the KVP daemon runs (under the root's `proc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Daemon {
    /// Found, with its process ids.
    Running(Vec<u32>),
    NotRunning,
    /// Could not be told (a captured tree without processes, an unreadable `/proc`).
    Unknown(String),
}

/// What became of reading the pool file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolState {
    Read(Pool),
    /// No such file (or no directory above it).
    Missing,
    /// Refused or failed: why, one line.
    Unreadable(String),
}

/// Everything learnt about the guest parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kvp {
    /// The pool file as the node knows it (`/var/lib/hyperv/.kvp_pool_3`).
    pub path: String,
    pub state: PoolState,
    pub daemon: Daemon,
    /// Whether VMBus offers the Data Exchange service; `None` without a VMBus listing.
    pub service_offered: Option<bool>,
}

impl Default for Kvp {
    fn default() -> Self {
        Kvp {
            path: format!("/{POOL_DIR}/{GUEST_PARAMETERS}"),
            state: PoolState::Missing,
            daemon: Daemon::Unknown("not checked".into()),
            service_offered: None,
        }
    }
}

/// The pool's non-empty value of `key`.
fn value<'a>(pool: &'a Pool, key: &str) -> Option<&'a str> {
    pool.get(key).map(str::trim).filter(|v| !v.is_empty())
}

impl Kvp {
    pub fn pool(&self) -> Option<&Pool> {
        match &self.state {
            PoolState::Read(p) => Some(p),
            _ => None,
        }
    }

    /// The physical host's name and the item it came from.
    pub fn host(&self) -> Option<(&'static str, &str)> {
        let pool = self.pool()?;
        HOST_KEYS
            .iter()
            .find_map(|k| value(pool, k).map(|v| (*k, v)))
    }

    pub fn vm_name(&self) -> Option<&str> {
        self.pool().and_then(|p| value(p, VM_NAME_KEY))
    }

    pub fn vm_id(&self) -> Option<&str> {
        self.pool().and_then(|p| value(p, VM_ID_KEY))
    }

    /// Why the host is not known, with what to do; `None` when it is.
    pub fn why_unknown(&self) -> Option<String> {
        if self.host().is_some() {
            return None;
        }
        let offered = match self.service_offered {
            Some(false) => format!(
                "; VMBus lists no Data Exchange device, so the host does not offer the service: {ENABLE_ON_HOST}"
            ),
            _ => String::new(),
        };
        Some(match (&self.state, &self.daemon) {
            (PoolState::Unreadable(why), _) => format!("{why}{offered}"),
            (PoolState::Missing, Daemon::Running(_)) => format!(
                "{} does not exist although the KVP daemon runs: the host sends no guest parameters{}",
                self.path,
                if offered.is_empty() {
                    format!("; {ENABLE_ON_HOST}")
                } else {
                    offered
                }
            ),
            (PoolState::Missing, _) => format!(
                "{} does not exist: the KVP daemon has not run on this node: {INSTALL}{offered}",
                self.path
            ),
            (PoolState::Read(p), _) if p.records.is_empty() => format!(
                "{} holds no items: the host sends none (its Data Exchange service is off, or it withholds its own items){}",
                self.path,
                if offered.is_empty() {
                    format!("; {ENABLE_ON_HOST}")
                } else {
                    offered
                }
            ),
            (PoolState::Read(_), _) => format!(
                "{} names no host (no {}): the host withholds its own items",
                self.path,
                HOST_KEYS.join(", ")
            ),
        })
    }

    /// A warning that the host named may be out of date: the daemon does not run.
    pub fn stale(&self) -> Option<String> {
        (self.host().is_some() && self.daemon == Daemon::NotRunning).then(|| {
            format!(
                "the KVP daemon is not running, so {} may name a host this VM has left (the new host's items arrive through the daemon after a live migration): start it, or {INSTALL}",
                self.path
            )
        })
    }
}

/// Whether the VMBus listing under `root` has the Data Exchange device; `None` when there is
/// no listing.
fn service_offered(root: &Path) -> Option<bool> {
    let dir = root.join("sys/bus/vmbus/devices");
    let entries = fs::read_dir(dir).ok()?;
    Some(entries.filter_map(Result::ok).any(|e| {
        fs::read_to_string(e.path().join("class_id"))
            .map(|s| {
                s.trim()
                    .trim_matches(['{', '}'])
                    .eq_ignore_ascii_case(KVP_CLASS_ID)
            })
            .unwrap_or(false)
    }))
}

/// Whether a KVP daemon runs under `root`'s `proc`.
fn daemon(root: &Path) -> Daemon {
    match procs::named(root, DAEMONS) {
        Ok(found) if found.processes > 0 && found.matches.is_empty() => Daemon::NotRunning,
        Ok(found) if found.processes > 0 => {
            Daemon::Running(found.matches.iter().map(|p| p.pid).collect())
        }
        Ok(_) => Daemon::Unknown(format!(
            "{} lists no processes",
            root.join("proc").display()
        )),
        Err(e) => Daemon::Unknown(e),
    }
}

/// Reads the guest parameters under `root` (`/` on a live system).
pub fn read(root: &Path) -> Kvp {
    let file: PathBuf = root.join(POOL_DIR).join(GUEST_PARAMETERS);
    let state = match lkh_common::trusted::read_file(&file) {
        Ok(Some(bytes)) => PoolState::Read(parse(&bytes)),
        Ok(None) => PoolState::Missing,
        Err(f) => PoolState::Unreadable(format!("the KVP pool is not read: {}", f.message)),
    };
    Kvp {
        path: file.display().to_string(),
        state,
        daemon: daemon(root),
        service_offered: service_offered(root),
    }
}

/// Writes a pool file's bytes from `(key, value)` pairs (fixtures and tests).
pub fn encode(items: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.len() * RECORD_LEN);
    for (k, v) in items {
        let mut rec = vec![0u8; RECORD_LEN];
        let k = &k.as_bytes()[..k.len().min(KEY_LEN - 1)];
        let v = &v.as_bytes()[..v.len().min(VALUE_LEN - 1)];
        rec[..k.len()].copy_from_slice(k);
        rec[KEY_LEN..KEY_LEN + v.len()].copy_from_slice(v);
        out.extend_from_slice(&rec);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn onprem() -> Vec<u8> {
        encode(&[
            ("HostName", "hv1.example.com"),
            ("HostingSystemEditionId", "8"),
            ("PhysicalHostName", "HV1"),
            ("PhysicalHostNameFullyQualified", "hv1.example.com"),
            ("VirtualMachineId", "461B2364-3901-4349-B3C2-FA4821CBEEFE"),
            ("VirtualMachineName", "lk-node-a"),
        ])
    }

    fn kvp(bytes: &[u8]) -> Kvp {
        Kvp {
            state: PoolState::Read(parse(bytes)),
            daemon: Daemon::Running(vec![1]),
            ..Kvp::default()
        }
    }

    #[test]
    fn a_pool_names_the_host_and_the_vm() {
        let k = kvp(&onprem());
        assert_eq!(
            k.host(),
            Some(("PhysicalHostNameFullyQualified", "hv1.example.com"))
        );
        assert_eq!(k.vm_name(), Some("lk-node-a"));
        assert_eq!(k.vm_id(), Some("461B2364-3901-4349-B3C2-FA4821CBEEFE"));
        assert!(k.pool().unwrap().notes.is_empty());
        assert_eq!(k.why_unknown(), None);
        assert_eq!(k.stale(), None);
    }

    #[test]
    fn the_best_host_item_present_wins() {
        let k = kvp(&encode(&[
            ("HostName", "hv2.corp"),
            ("PhysicalHostName", "HV2"),
        ]));
        assert_eq!(k.host(), Some(("PhysicalHostName", "HV2")));
        let k = kvp(&encode(&[
            ("HostName", "hv2.corp"),
            ("PhysicalHostName", "  "),
        ]));
        assert_eq!(k.host(), Some(("HostName", "hv2.corp")));
    }

    #[test]
    fn a_partial_record_is_ignored_and_said() {
        let mut b = onprem();
        b.extend_from_slice(b"HostName\0garbage");
        let p = parse(&b);
        assert_eq!(p.records.len(), 6);
        assert!(p.notes[0].contains("last 16 bytes were ignored"), "{p:?}");
        let p = parse(&b[..100]);
        assert!(p.records.is_empty());
        assert_eq!(p.notes.len(), 1);
    }

    #[test]
    fn odd_bytes_are_escaped_and_noted() {
        let mut b = encode(&[("PhysicalHostName", "")]);
        // a value with a newline, an invalid byte and no NUL anywhere in its field
        let v = &mut b[KEY_LEN..];
        v.fill(b'A');
        v[0..6].copy_from_slice(b"H\nV\xff\x1b[");
        let p = parse(&b);
        let value = &p.records[0].value;
        assert!(value.starts_with("H\\x0aV\\xff\\x1b["), "{value}");
        assert_eq!(value.len(), 2042 + 15, "three bytes of the six escaped");
        assert!(!value.contains('\n'));
        assert!(p.notes.iter().any(|n| n.contains("no terminating NUL")));
        assert!(p.notes.iter().any(|n| n.contains("not printable UTF-8")));
    }

    #[test]
    fn keys_without_a_nul_and_bytes_after_the_nul() {
        let mut b = vec![b'k'; RECORD_LEN];
        b[KEY_LEN..KEY_LEN + 3].copy_from_slice(b"v\0\xff");
        let p = parse(&b);
        assert_eq!(p.records[0].key.len(), KEY_LEN);
        assert_eq!(p.records[0].value, "v", "bytes after the NUL are padding");
        assert!(
            p.notes[0].contains("the key has no terminating NUL"),
            "{p:?}"
        );
    }

    #[test]
    fn empty_keys_are_skipped_and_repeats_do_not_count() {
        let b = encode(&[
            ("", ""),
            ("", "orphan"),
            ("PhysicalHostName", "HV1"),
            ("PhysicalHostName", "HV9"),
        ]);
        let p = parse(&b);
        assert_eq!(p.records.len(), 1);
        assert_eq!(p.get("PhysicalHostName"), Some("HV1"));
        assert!(p.notes.iter().any(|n| n.contains("no key")), "{p:?}");
        assert!(p.notes.iter().any(|n| n.contains("appears again")), "{p:?}");
    }

    #[test]
    fn why_the_host_is_unknown_says_what_to_do() {
        let mut k = Kvp {
            daemon: Daemon::NotRunning,
            ..Kvp::default()
        };
        assert!(k.why_unknown().unwrap().contains("hyperv-daemons"));
        k.daemon = Daemon::Running(vec![7]);
        k.service_offered = Some(false);
        let why = k.why_unknown().unwrap();
        assert!(why.contains("Enable-VMIntegrationService"), "{why}");
        k.state = PoolState::Read(parse(&encode(&[("HostingSystemEditionId", "8")])));
        assert!(k.why_unknown().unwrap().contains("names no host"));
        k.state = PoolState::Read(Pool::default());
        assert!(k.why_unknown().unwrap().contains("holds no items"));
    }

    #[test]
    fn a_host_without_the_daemon_may_be_stale() {
        let mut k = kvp(&onprem());
        k.daemon = Daemon::NotRunning;
        assert!(k.stale().unwrap().contains("live migration"));
        k.daemon = Daemon::Unknown("capture".into());
        assert_eq!(k.stale(), None);
    }
}
