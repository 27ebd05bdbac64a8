//! NFS mount configuration: versions, the option string handed to the kernel
//! by `mount(2)`, and the checks that refuse contradictory input before
//! anything is mounted.
//!
//! There is no `mount.nfs` in the loop, so this module does its job: generic
//! options (`ro`, `nosuid`, ...) become `MS_*` flags, fstab-only words
//! (`defaults`, `_netdev`, ...) are dropped, and `addr=` (plus `mountaddr=` for
//! v2/v3 and `clientaddr=` for v4) are added, because the kernel cannot resolve
//! host names. Option names are checked against the kernel's NFS parameter
//! table (fs/nfs/fs_context.c), so a typo is refused up front (exit 2) rather
//! than by the kernel at mount time.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::mountinfo::{MountEntry, MountOption};

/// LifeKeeper's recommended NAS options (`rw,nolock,bg,hard,nointr,tcp,
/// nfsvers=3,timeo=600,rsize=32768,wsize=32768,actimeo=0`) minus what has no
/// meaning for a `mount(2)` call: `bg` (a mount.nfs retry mode), `nointr`
/// (ignored since 2.6.25) and `nfsvers` (comes from VERSION). `retrans=2`
/// pins the kernel default so the mount behaves the same on every kernel.
pub const DEFAULT_OPTIONS_V3: &str =
    "rw,hard,nolock,proto=tcp,timeo=600,retrans=2,rsize=32768,wsize=32768,actimeo=0";
/// For v4 `nolock` is left out: locking is part of the protocol there.
pub const DEFAULT_OPTIONS_V4: &str =
    "rw,hard,proto=tcp,timeo=600,retrans=2,rsize=32768,wsize=32768,actimeo=0";

/// NFS protocol version as configured by `VERSION=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V2,
    V3,
    /// Any 4.x: the highest minor version the server and the kernel share, found by
    /// trying 4.2, 4.1, 4.0 in turn at mount time (as mount.nfs does; the kernel itself
    /// takes a bare `vers=4` as 4.0).
    V4,
    V4_0,
    V4_1,
    V4_2,
}

impl FromStr for Version {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim() {
            "2" => Version::V2,
            "3" => Version::V3,
            "4" => Version::V4,
            "4.0" => Version::V4_0,
            "4.1" => Version::V4_1,
            "4.2" => Version::V4_2,
            other => {
                return Err(format!(
                    "unknown NFS version {other:?}: use 3, 4, 4.0, 4.1, 4.2 (or 2 where the kernel still offers it)"
                ));
            }
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2 => "2",
            Version::V3 => "3",
            Version::V4 => "4",
            Version::V4_0 => "4.0",
            Version::V4_1 => "4.1",
            Version::V4_2 => "4.2",
        }
    }

    pub fn is_v4(self) -> bool {
        matches!(
            self,
            Version::V4 | Version::V4_0 | Version::V4_1 | Version::V4_2
        )
    }

    /// ONC RPC version number of the NFS program (100003).
    pub fn rpc_version(self) -> u32 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
            _ => 4,
        }
    }

    /// File-system type for `mount(2)` and as shown in mountinfo.
    pub fn fstype(self) -> &'static str {
        if self.is_v4() { "nfs4" } else { "nfs" }
    }

    /// The exact versions to try for this one, best first: 4.2, 4.1, 4.0 for `V4` (none
    /// above `max_minor`, when the server's highest is known), else the version itself.
    pub fn candidates(self, max_minor: Option<u32>) -> Vec<Version> {
        match self {
            Version::V4 => [Version::V4_2, Version::V4_1, Version::V4_0]
                .into_iter()
                .filter(|v| v.minor().zip(max_minor).is_none_or(|(m, max)| m <= max))
                .collect(),
            v => vec![v],
        }
    }

    /// The exact version for a `vers=` value shown in mountinfo (`4` is 4.0).
    pub fn from_mounted(vers: &str) -> Option<Version> {
        match vers {
            "4" => Some(Version::V4_0),
            "4.0" | "4.1" | "4.2" | "3" | "2" => vers.parse().ok(),
            _ => None,
        }
    }

    pub fn minor(self) -> Option<u32> {
        match self {
            Version::V4_0 => Some(0),
            Version::V4_1 => Some(1),
            Version::V4_2 => Some(2),
            _ => None,
        }
    }

    /// Does the `vers=` value the kernel shows in mountinfo satisfy this version?
    pub fn matches_mounted(self, vers: &str) -> bool {
        match self {
            Version::V4 => vers == "4" || vers.starts_with("4."),
            Version::V4_0 => vers == "4.0" || vers == "4",
            other => vers == other.as_str(),
        }
    }

    pub fn default_options(self) -> &'static str {
        if self.is_v4() {
            DEFAULT_OPTIONS_V4
        } else {
            DEFAULT_OPTIONS_V3
        }
    }
}

/// Invalid configuration: the message says what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn bad(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// Kernel NFS parameters taking an unsigned number.
const U32_OPTS: &[&str] = &[
    "acdirmax",
    "acdirmin",
    "acregmax",
    "acregmin",
    "actimeo",
    "bsize",
    "minorversion",
    "mountport",
    "mountvers",
    "namlen",
    "nconnect",
    "max_connect",
    "port",
    "retrans",
    "rsize",
    "timeo",
    "wsize",
];
/// Kernel NFS parameters taking a string.
const STR_OPTS: &[&str] = &[
    "addr",
    "clientaddr",
    "fatal_neterrors",
    "fsc",
    "local_lock",
    "lookupcache",
    "mountaddr",
    "mounthost",
    "mountproto",
    "nfsvers",
    "proto",
    "rdirplus",
    "retry",
    "sec",
    "vers",
    "write",
    "xprtsec",
    "cert_serial",
    "privkey_serial",
];
/// Kernel NFS flags that also accept a `no` prefix.
const NO_FLAGS: &[&str] = &[
    "ac",
    "acl",
    "cto",
    "alignwrite",
    "fsc",
    "intr",
    "lock",
    "migration",
    "posix",
    "rdirplus",
    "resvport",
    "sharecache",
    "trunkdiscovery",
];
/// Kernel NFS flags without a `no` form.
const FLAGS: &[&str] = &[
    "bg",
    "fg",
    "hard",
    "soft",
    "softerr",
    "softreval",
    "sloppy",
    "tcp",
    "udp",
    "rdma",
    "v2",
    "v3",
    "v4",
    "v4.0",
    "v4.1",
    "v4.2",
];
/// fstab/mount(8) words that mean nothing to the kernel.
const USERSPACE_ONLY: &[&str] = &[
    "defaults", "auto", "noauto", "_netdev", "nofail", "user", "nouser", "users", "owner",
    "noowner", "group", "comment",
];
/// Generic mount flags: (name, flag to set, flag to clear).
const MS_FLAGS: &[(&str, libc::c_ulong, libc::c_ulong)] = &[
    ("ro", libc::MS_RDONLY, 0),
    ("rw", 0, libc::MS_RDONLY),
    ("nosuid", libc::MS_NOSUID, 0),
    ("suid", 0, libc::MS_NOSUID),
    ("nodev", libc::MS_NODEV, 0),
    ("dev", 0, libc::MS_NODEV),
    ("noexec", libc::MS_NOEXEC, 0),
    ("exec", 0, libc::MS_NOEXEC),
    ("sync", libc::MS_SYNCHRONOUS, 0),
    ("async", 0, libc::MS_SYNCHRONOUS),
    ("dirsync", libc::MS_DIRSYNC, 0),
    ("noatime", libc::MS_NOATIME, 0),
    ("atime", 0, libc::MS_NOATIME),
    ("nodiratime", libc::MS_NODIRATIME, 0),
    ("diratime", 0, libc::MS_NODIRATIME),
    ("relatime", libc::MS_RELATIME, 0),
    ("norelatime", 0, libc::MS_RELATIME),
    ("strictatime", libc::MS_STRICTATIME, 0),
    ("lazytime", libc::MS_LAZYTIME, 0),
    ("nolazytime", 0, libc::MS_LAZYTIME),
];

/// A complete, validated NFS mount configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsConfig {
    pub server: IpAddr,
    /// Export path on the server, absolute, without trailing slash.
    pub export: String,
    /// Absolute mount point, without trailing slash.
    pub mount_point: String,
    pub version: Version,
    /// Validated NFS options (defaults or OPTIONS=), without vers/addr.
    pub options: Vec<MountOption>,
    /// `MS_*` flags from generic options.
    pub flags: libc::c_ulong,
}

/// What `mount(2)` gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRequest {
    pub source: String,
    pub target: String,
    pub fstype: &'static str,
    pub flags: libc::c_ulong,
    pub data: String,
    /// The exact version asked for (one of `Version::candidates`).
    pub version: Version,
}

/// `server:/export`, with brackets around IPv6 addresses, as the kernel shows it.
pub fn source_of(server: IpAddr, export: &str) -> String {
    match server {
        IpAddr::V4(a) => format!("{a}:{export}"),
        IpAddr::V6(a) => format!("[{a}]:{export}"),
    }
}

/// Check an export path: absolute, no NUL/comma/whitespace; trailing slashes removed.
pub fn normalize_export(export: &str) -> Result<String, ConfigError> {
    if !export.starts_with('/') {
        return Err(bad(format!(
            "EXPORT={export:?} must be an absolute path on the server starting with '/' (e.g. EXPORT=/srv/data)"
        )));
    }
    if export.contains(['\0', ',', ' ', '\t', '\n']) {
        return Err(bad(format!(
            "EXPORT={export:?} contains a NUL, comma or whitespace, which mount(2) cannot pass; rename the export"
        )));
    }
    Ok(trim_slashes(export))
}

/// Check a mount point: absolute, no `.`/`..` components; trailing slashes removed.
pub fn normalize_mount_point(mp: &str) -> Result<String, ConfigError> {
    if mp.is_empty() {
        return Err(bad(
            "MOUNTPOINT is missing: set MOUNTPOINT=/absolute/path in the resource's config file",
        ));
    }
    if !mp.starts_with('/') {
        return Err(bad(format!(
            "MOUNTPOINT={mp:?} is relative: give an absolute path such as /mnt/data"
        )));
    }
    if mp.contains('\0') || mp.contains('\n') {
        return Err(bad(format!(
            "MOUNTPOINT={mp:?} contains a NUL or newline: choose another path"
        )));
    }
    if mp.split('/').any(|c| c == "." || c == "..") {
        return Err(bad(format!(
            "MOUNTPOINT={mp:?} contains '.' or '..': give the plain absolute path"
        )));
    }
    let n = trim_slashes(mp);
    if n == "/" {
        return Err(bad(
            "MOUNTPOINT=/ is not allowed: mount the export on a directory of its own",
        ));
    }
    Ok(n)
}

fn trim_slashes(s: &str) -> String {
    let t = s.trim_end_matches('/');
    let t = if t.is_empty() { "/" } else { t };
    // collapse repeated slashes, which the kernel removes in mountinfo
    let mut out = String::with_capacity(t.len());
    let mut prev = '\0';
    for c in t.chars() {
        if !(c == '/' && prev == '/') {
            out.push(c);
        }
        prev = c;
    }
    out
}

fn parse_ip(what: &str, s: &str) -> Result<IpAddr, ConfigError> {
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| {
            bad(format!(
                "{what}={s:?} is not a numeric IPv4 or IPv6 address"
            ))
        })
}

impl NfsConfig {
    /// Validate everything; `options` of `None` means "use the defaults".
    pub fn new(
        server: IpAddr,
        export: &str,
        mount_point: &str,
        version: Version,
        options: Option<&str>,
    ) -> Result<Self, ConfigError> {
        if server.is_unspecified() || server.is_multicast() {
            return Err(bad(format!(
                "SERVER={server} is not a usable unicast address: give the NAS's IP address"
            )));
        }
        let export = normalize_export(export)?;
        let mount_point = normalize_mount_point(mount_point)?;
        let text = options.unwrap_or(version.default_options());
        let (options, flags) = parse_options(text, version, server)?;
        Ok(NfsConfig {
            server,
            export,
            mount_point,
            version,
            options,
            flags,
        })
    }

    pub fn source(&self) -> String {
        source_of(self.server, &self.export)
    }

    fn opt(&self, key: &str) -> Option<Option<&str>> {
        self.options
            .iter()
            .find(|o| o.key == key)
            .map(|o| o.value.as_deref())
    }

    /// True unless `soft`/`softerr` was asked for.
    pub fn is_hard(&self) -> bool {
        self.opt("soft").is_none() && self.opt("softerr").is_none()
    }

    /// Build the `mount(2)` arguments. `client_addr` is the local address
    /// facing the server (NFSv4 needs it for callbacks).
    pub fn mount_request(&self, client_addr: Option<IpAddr>) -> MountRequest {
        let mut data: Vec<String> = Vec::new();
        data.push(format!("vers={}", self.version.as_str()));
        for o in &self.options {
            data.push(match (o.key.as_str(), o.value.as_deref()) {
                ("proto" | "mountproto", Some(p @ ("tcp" | "rdma"))) if self.server.is_ipv6() => {
                    format!("{}={p}6", o.key)
                }
                (k, Some(v)) => format!("{k}={v}"),
                (k, None) => k.to_string(),
            });
        }
        if self.opt("proto").is_none() {
            data.push(
                if self.server.is_ipv6() {
                    "proto=tcp6"
                } else {
                    "proto=tcp"
                }
                .to_string(),
            );
        }
        if !self.version.is_v4() {
            if self.opt("mountaddr").is_none() {
                data.push(format!("mountaddr={}", self.server));
            }
            if self.opt("mountproto").is_none() {
                data.push(
                    if self.server.is_ipv6() {
                        "mountproto=tcp6"
                    } else {
                        "mountproto=tcp"
                    }
                    .to_string(),
                );
            }
        } else if let (None, Some(c)) = (self.opt("clientaddr"), client_addr) {
            data.push(format!("clientaddr={c}"));
        }
        data.push(format!("addr={}", self.server));
        MountRequest {
            source: self.source(),
            target: self.mount_point.clone(),
            fstype: self.version.fstype(),
            flags: self.flags,
            data: data.join(","),
            version: self.version,
        }
    }

    /// Compare a mount found in mountinfo with this configuration; returns
    /// one line per mismatch (empty when the mount is what we expect).
    pub fn verify(&self, e: &MountEntry) -> Vec<String> {
        let mut bad = Vec::new();
        if !e.is_nfs() {
            bad.push(format!("file system type is {} instead of nfs", e.fstype));
        }
        if e.source.trim_end_matches('/') != self.source().trim_end_matches('/') {
            bad.push(format!(
                "source is {} instead of {}",
                e.source,
                self.source()
            ));
        }
        match e.option("vers") {
            Some(Some(v)) if self.version.matches_mounted(v) => {}
            Some(Some(v)) => bad.push(format!("vers={v} instead of {}", self.version)),
            _ => bad.push("no vers= option".to_string()),
        }
        match e.option("addr") {
            Some(Some(a)) if parse_ip("addr", a).ok() == Some(self.server) => {}
            Some(Some(a)) => bad.push(format!("addr={a} instead of {}", self.server)),
            _ => bad.push("no addr= option".to_string()),
        }
        match e.option("proto") {
            Some(Some(p)) if p.starts_with("tcp") || p.starts_with("rdma") => {}
            Some(Some(p)) => bad.push(format!("proto={p} instead of tcp")),
            _ => {}
        }
        let hard = !e.has_option("soft") && !e.has_option("softerr");
        if hard != self.is_hard() {
            bad.push(format!(
                "mounted {} but configured {}",
                if hard { "hard" } else { "soft" },
                if self.is_hard() { "hard" } else { "soft" }
            ));
        }
        if self.flags & libc::MS_RDONLY != 0 && !e.has_option("ro") {
            bad.push("mounted read-write but configured ro".to_string());
        }
        bad
    }
}

fn version_of_option(key: &str, value: Option<&str>) -> Option<String> {
    match (key, value) {
        ("vers" | "nfsvers", Some(v)) => Some(v.to_string()),
        ("v2" | "v3" | "v4" | "v4.0" | "v4.1" | "v4.2", None) => Some(key[1..].to_string()),
        _ => None,
    }
}

/// Parse and validate an OPTIONS= string for `version` and `server`.
/// Returns the NFS options for the kernel and the generic `MS_*` flags.
pub fn parse_options(
    text: &str,
    version: Version,
    server: IpAddr,
) -> Result<(Vec<MountOption>, libc::c_ulong), ConfigError> {
    let mut out: Vec<MountOption> = Vec::new();
    let mut flags: libc::c_ulong = 0;
    for raw in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (key, value) = match raw.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (raw, None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(bad(format!("OPTIONS: malformed option {raw:?}")));
        }
        if let Some(&(_, set, clear)) = MS_FLAGS.iter().find(|(n, _, _)| *n == key) {
            if value.is_some() {
                return Err(bad(format!("OPTIONS: {key} takes no value")));
            }
            flags = (flags & !clear) | set;
            continue;
        }
        if USERSPACE_ONLY.contains(&key) {
            log::debug!("OPTIONS: ignoring {raw:?} (only meaningful to mount(8)/fstab)");
            continue;
        }
        // version: must agree with VERSION=
        if let Some(v) = version_of_option(key, value) {
            let asked: Version = v
                .parse()
                .map_err(|e: String| bad(format!("OPTIONS: {e}")))?;
            let agrees = asked == version
                || (version == Version::V4 && asked.is_v4())
                || (asked == Version::V4 && version.is_v4());
            if !agrees {
                return Err(bad(format!(
                    "OPTIONS: {raw} contradicts VERSION={version}; remove it from OPTIONS (VERSION decides)"
                )));
            }
            continue;
        }
        let is_known = U32_OPTS.contains(&key)
            || STR_OPTS.contains(&key)
            || FLAGS.contains(&key)
            || NO_FLAGS.contains(&key)
            || key
                .strip_prefix("no")
                .is_some_and(|k| NO_FLAGS.contains(&k));
        if !is_known {
            return Err(bad(format!(
                "OPTIONS: unknown NFS option {key:?}; see nfs(5) for valid names"
            )));
        }
        if U32_OPTS.contains(&key) {
            match value.map(str::parse::<u32>) {
                Some(Ok(_)) => {}
                _ => {
                    return Err(bad(format!(
                        "OPTIONS: {key} needs a whole number, e.g. {key}=600 (got {raw:?})"
                    )));
                }
            }
        } else if STR_OPTS.contains(&key) && !NO_FLAGS.contains(&key) && !FLAGS.contains(&key) {
            if value.is_none_or(str::is_empty) {
                return Err(bad(format!("OPTIONS: {key} needs a value ({key}=...)")));
            }
        } else if value.is_some() && !(key == "fsc" || key == "rdirplus") {
            return Err(bad(format!("OPTIONS: {key} takes no value (got {raw:?})")));
        }
        let value_s = value.unwrap_or("");
        // contradictions with VERSION / SERVER / the TCP-only probes
        match key {
            "minorversion" => {
                let m: u32 = value_s.parse().unwrap_or(u32::MAX);
                let ok = version.is_v4() && version.minor().is_none_or(|vm| vm == m);
                if !ok {
                    return Err(bad(format!(
                        "OPTIONS: minorversion={m} contradicts VERSION={version}; use VERSION=4.{m} instead"
                    )));
                }
            }
            "mountaddr" | "mounthost" | "mountport" | "mountproto" | "mountvers"
                if version.is_v4() =>
            {
                return Err(bad(format!(
                    "OPTIONS: {key} is for the v2/v3 MOUNT protocol and contradicts VERSION={version}; remove it"
                )));
            }
            "clientaddr" if !version.is_v4() => {
                return Err(bad(format!(
                    "OPTIONS: clientaddr is NFSv4-only and contradicts VERSION={version}; remove it"
                )));
            }
            "udp" => {
                return Err(bad(
                    "OPTIONS: udp is not supported (NFSv4 forbids it and lkh-nas probes over TCP); use proto=tcp",
                ));
            }
            "proto" | "mountproto" if value_s.starts_with("udp") => {
                return Err(bad(format!(
                    "OPTIONS: {key}={value_s} is not supported (lkh-nas probes over TCP); use {key}=tcp"
                )));
            }
            "proto" | "mountproto" if !matches!(value_s, "tcp" | "tcp6" | "rdma" | "rdma6") => {
                return Err(bad(format!(
                    "OPTIONS: {key}={value_s} is not a transport: use tcp"
                )));
            }
            "addr" | "mountaddr" => {
                let a = parse_ip(key, value_s)?;
                if a != server {
                    return Err(bad(format!(
                        "OPTIONS: {key}={value_s} contradicts SERVER={server}; remove it (SERVER decides)"
                    )));
                }
                continue;
            }
            "clientaddr" => {
                parse_ip(key, value_s)?;
            }
            _ => {}
        }
        let key = if key == "tcp" { "proto" } else { key };
        let value = if key == "proto" && value.is_none() {
            Some("tcp")
        } else {
            value
        };
        // later options override earlier ones, as in the kernel
        let conflicts: &[&str] = match key {
            "hard" | "soft" | "softerr" => &["hard", "soft", "softerr"],
            _ => &[],
        };
        let base = key.strip_prefix("no").filter(|k| NO_FLAGS.contains(k));
        out.retain(|o| {
            o.key != key
                && !conflicts.contains(&o.key.as_str())
                && base.is_none_or(|b| o.key != b)
                && o.key.strip_prefix("no") != Some(key)
        });
        out.push(MountOption {
            key: key.to_string(),
            value: value.map(str::to_string),
        });
    }
    Ok((out, flags))
}

#[cfg(test)]
mod tests;
