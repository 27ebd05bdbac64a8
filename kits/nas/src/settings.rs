//! The resource's settings, validated into a `nas::NfsConfig`, plus the
//! per-resource runtime state in lkh-common's run-state layer, `<run dir>/nas/<TAG>/`:
//! `addr` (the resolved server address), `server` (what restore learnt, [`Learnt`]) and
//! `iocheck` (an IO-check child stuck in the kernel, written by `nas::child` inside the
//! checked, root-only tag directory).
//!
//! A host name in SERVER= is resolved once, at restore, and the address is
//! kept in `addr` so the other actions (and the mount itself) use the
//! same address even if DNS later fails or changes — LifeKeeper's NAS kit
//! likewise mounts by address. `remove` never asks a name server: it takes
//! the recorded address, else the address of the mount of EXPORT at
//! MOUNTPOINT, else none is needed (nothing of ours is mounted).

use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use lkh_common::runstate::RunDir;
use lkh_common::{Deadline, Failure, HookCtx, Tag};
use nas::{IoCheck, NfsConfig, Version};

/// The kit's run-state directory, `<run dir>/nas`.
fn run_state() -> RunDir {
    RunDir::new("nas")
}

/// A value of `tag`'s run state; `None` when missing, unreadable or the tag is not one.
fn load_value(tag: &str, name: &str) -> Option<String> {
    let tag = Tag::parse(tag).ok()?;
    match run_state().load(&tag, name) {
        Ok(v) => v.and_then(|b| String::from_utf8(b).ok()),
        Err(e) => {
            log::warn!("{e}");
            None
        }
    }
}

/// Stores a value of `tag`'s run state; a failure is returned as its message.
fn store_value(tag: &str, name: &str, value: &str) -> Result<(), String> {
    let tag = Tag::parse(tag).map_err(|e| e.to_string())?;
    run_state()
        .store(&tag, name, value.as_bytes())
        .map_err(|e| e.to_string())
}

/// Time kept back from TIMEOUT so the action reports its own precise message before
/// lkh-common's watchdog gives up on it: a tenth of the budget, from 0.3 s to 1 s, so a loaded
/// machine's scheduling delays do not let the watchdog's generic message win.
fn margin(budget: Duration) -> Duration {
    (budget / 10).clamp(Duration::from_millis(300), Duration::from_secs(1))
}

#[derive(Debug)]
pub struct Settings {
    pub cfg: NfsConfig,
    pub io_check: IoCheck,
    pub halt_on_failure: bool,
    /// End of the whole action (TIMEOUT minus a margin).
    pub deadline: Instant,
    /// End of the probe and IO check (LKNFSTIMEOUT, capped by `deadline`).
    pub check_deadline: Instant,
    /// The time the probe and IO check were given (`check_deadline` from now, at load).
    pub check_budget: Duration,
    pub tag: String,
    /// False when an action that never asks the resolver (remove, quickCheck, `status`) had
    /// no address for a SERVER= name: `cfg.server` is a placeholder then, and nothing of ours
    /// is mounted at MOUNTPOINT.
    pub server_known: bool,
    /// SERVER= as configured.
    pub server_name: String,
}

impl Settings {
    /// The mount this resource stands for, as `SERVER:EXPORT` (the name when no address is
    /// known, see [`Settings::server_known`]).
    pub fn wanted(&self) -> String {
        if self.server_known {
            self.cfg.source()
        } else {
            format!("{}:{}", self.server_name, self.cfg.export)
        }
    }
}

/// How SERVER= is turned into an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// restore: ask the resolver now and record the answer.
    Now,
    /// the recorded address, else ask the resolver (bounded).
    Recorded,
    /// remove, quickCheck, `status`: the recorded address, else the mount's, never the
    /// resolver (a name server that is down must not make a probe of a resource that is not
    /// running here fail, nor stall it).
    Never,
}

impl Settings {
    /// Marker of an IO-check child stuck in the kernel: `iocheck` in the tag's run-state
    /// directory, which is created and checked here (root's, 0700, no links), so the library
    /// writes it where nobody else can plant anything.
    pub fn marker(&self) -> PathBuf {
        let dir = Tag::parse(&self.tag)
            .map_err(|e| e.to_string())
            .and_then(|t| run_state().tag(&t).map_err(|e| e.to_string()));
        match dir {
            Ok(d) => d.path().join("iocheck"),
            Err(e) => {
                log::warn!("{e}; a stuck IO-check child will not be remembered");
                PathBuf::from("/dev/null")
            }
        }
    }
}

/// Resolve a host name, bounded by `budget` (a dead DNS server must not hang us).
fn resolve(name: &str, budget: Duration) -> Result<IpAddr, Failure> {
    let owned = name.to_string();
    let r = lkh_common::run_bounded(Deadline::after(budget), move || {
        (owned.as_str(), 0u16)
            .to_socket_addrs()
            .map(|mut it| it.next().map(|sa| sa.ip()))
    });
    match r {
        Some(Ok(Some(ip))) => Ok(ip),
        Some(Ok(None)) => Err(Failure::failed(format!(
            "SERVER={name}: the name has no address in /etc/hosts or DNS: add it there or give the NAS's IP address"
        ))),
        Some(Err(e)) => Err(Failure::failed(format!(
            "SERVER={name}: the name does not resolve ({e}): check /etc/hosts and DNS or give the NAS's IP address"
        ))),
        None => Err(Failure::failed(format!(
            "SERVER={name}: name resolution did not answer within {} s: give the NAS's IP address in SERVER=",
            budget.as_secs()
        ))),
    }
}

/// The address of the NFS mount of `export` at `mount_point`, if there is one
/// (what remove works from when SERVER= is a name and nothing was recorded).
fn mounted_addr(mount_point: &str, export: &str) -> Option<IpAddr> {
    let entries = nas::mountinfo::read_self().ok()?;
    let e = nas::mountinfo::find_at(&entries, mount_point).filter(|e| e.is_nfs())?;
    let (host, path) = e.source.split_once(":/")?;
    let same = format!("/{path}").trim_end_matches('/') == export.trim_end_matches('/');
    let host = host.trim_start_matches('[').trim_end_matches(']');
    same.then(|| host.parse().ok()).flatten()
}

/// The server address: SERVER= itself, or the address resolved at restore;
/// `None` only for [`Resolve::Never`] when there is none to be had without a
/// name server.
fn server_addr(
    ctx: &HookCtx,
    raw: &str,
    how: Resolve,
    mounted: impl FnOnce() -> Option<IpAddr>,
) -> Result<Option<IpAddr>, Failure> {
    let plain = raw.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = plain.parse::<IpAddr>() {
        return Ok(Some(ip));
    }
    let name_like = raw
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let looks_numeric = raw.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if !name_like || looks_numeric || raw.starts_with(['-', '.']) {
        return Err(ctx.config.invalid(
            "SERVER",
            "is not a valid IP address or host name: give the NAS's IP address",
        ));
    }
    if how != Resolve::Now
        && let Some(ip) =
            load_value(ctx.tag.as_str(), "addr").and_then(|s| s.trim().parse::<IpAddr>().ok())
    {
        return Ok(Some(ip));
    }
    if how == Resolve::Never {
        return Ok(mounted());
    }
    let ip = resolve(raw, ctx.deadline.cap(Duration::from_secs(5)))?;
    log::info!("SERVER={raw} resolved to {ip}; using that address");
    if let Err(e) = store_value(ctx.tag.as_str(), "addr", &format!("{ip}\n")) {
        log::warn!("cannot record the resolved address: {e}");
    }
    Ok(Some(ip))
}

impl Settings {
    /// The resource's settings from its configuration (every kit's `Settings::from_ctx`), with
    /// the given way of finding the server's address. A malformed setting is a usage failure
    /// (exit 2); a name the resolver cannot answer for fails (exit 1), and only where the
    /// resolver is asked.
    pub fn from_ctx(ctx: &HookCtx, how: Resolve) -> Result<Settings, Failure> {
        let server = ctx.require("SERVER")?.to_string();
        let export = ctx.require("EXPORT")?.to_string();
        let mount_point = ctx.require("MOUNTPOINT")?.to_string();
        // VERSION and IO_CHECK have their defaults in the key table, which the configuration
        // starts from
        let version: Version = ctx
            .config
            .get("VERSION")
            .unwrap_or_default()
            .parse()
            .map_err(|e: String| ctx.config.invalid("VERSION", &e))?;
        let io_check: IoCheck = ctx
            .config
            .get("IO_CHECK")
            .unwrap_or_default()
            .parse()
            .map_err(|e: String| ctx.config.invalid("IO_CHECK", &e))?;
        let options = ctx.config.get("OPTIONS");
        let ip = server_addr(ctx, &server, how, || mounted_addr(&mount_point, &export))?;
        let server_known = ip.is_some();
        // no address and nothing of ours mounted: a placeholder that matches no mount (an addr=
        // option, checked against SERVER, stands for it)
        let ip = ip.unwrap_or_else(|| {
            options
                .and_then(|o| o.split(',').find_map(|kv| kv.strip_prefix("addr=")))
                .and_then(|a| a.parse().ok())
                .unwrap_or(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
        });
        let cfg = NfsConfig::new(ip, &export, &mount_point, version, options).map_err(|e| {
            Failure::usage(format!("{e} (resource file {})", ctx.conf_file().display()))
        })?;
        // every action walks MOUNTPOINT as mount and unmount do: a symbolic link on the way
        // is refused before anything is looked at or changed
        if let Err(e) = nas::ops::mount_point(&cfg.mount_point, false) {
            return Err(match e.kind {
                nas::ErrorKind::Config => {
                    Failure::usage(format!("{e} (resource file {})", ctx.conf_file().display()))
                }
                _ => Failure::failed(e.msg),
            });
        }
        let end = ctx.deadline.instant();
        let deadline = end
            .checked_sub(margin(ctx.deadline.budget()))
            .unwrap_or(end);
        let check_deadline = match ctx.config.uint("LKNFSTIMEOUT") {
            Some(s) => deadline.min(Instant::now() + Duration::from_secs(s)),
            None => deadline,
        };
        Ok(Settings {
            cfg,
            io_check,
            halt_on_failure: ctx.config.get("ON_FAILURE") == Some("halt"),
            deadline,
            check_deadline,
            check_budget: check_deadline.saturating_duration_since(Instant::now()),
            tag: ctx.tag.as_str().to_string(),
            server_known,
            server_name: server,
        })
    }
}

/// What restore learnt about the server, kept as `server` in the run state for the other actions: the
/// NFS version VERSION=4 negotiated, and for v3 the export's root file handle and the NFS
/// and MOUNT ports, so quickCheck asks NFS NULL + GETATTR on the NFS port without the
/// portmapper and MOUNT. Only used while SERVER and EXPORT are what they were at restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Learnt {
    pub server: IpAddr,
    pub export: String,
    /// The exact version mounted (`vers=` as restore got it).
    pub version: Version,
    pub known: Option<nas::probe::Known>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Learnt {
    fn to_text(&self) -> String {
        let mut t = format!(
            "server={}\nexport={}\nversion={}\n",
            self.server, self.export, self.version
        );
        if let Some(k) = &self.known {
            t += &format!(
                "nfs_port={}\nmount_port={}\nroot_fh={}\n",
                k.nfs_port,
                k.mount_port,
                hex(&k.root_fh)
            );
        }
        t
    }

    fn parse(text: &str) -> Option<Learnt> {
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .map(str::trim)
        };
        let known = (|| {
            Some(nas::probe::Known {
                root_fh: unhex(get("root_fh")?)?,
                nfs_port: get("nfs_port")?.parse().ok()?,
                mount_port: get("mount_port")?.parse().ok()?,
            })
        })();
        Some(Learnt {
            server: get("server")?.parse().ok()?,
            export: get("export")?.to_string(),
            version: get("version")?.parse().ok()?,
            known,
        })
    }
}

/// Record what restore learnt (replaced atomically).
pub fn save_learnt(tag: &str, l: &Learnt) {
    if let Err(e) = store_value(tag, "server", &l.to_text()) {
        log::warn!(
            "cannot record what restore learnt: {e}; quickCheck will ask the portmapper and MOUNT each time"
        );
    }
}

/// What restore learnt, when it is about this SERVER and EXPORT.
pub fn load_learnt(s: &Settings) -> Option<Learnt> {
    let text = load_value(&s.tag, "server")?;
    Learnt::parse(&text).filter(|l| l.server == s.cfg.server && l.export == s.cfg.export)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learnt_round_trip_and_bad_text() {
        let l = Learnt {
            server: "192.0.2.1".parse().unwrap(),
            export: "/export".into(),
            version: Version::V3,
            known: Some(nas::probe::Known {
                root_fh: vec![1, 0, 0xab, 0xff],
                nfs_port: 2049,
                mount_port: 20048,
            }),
        };
        assert_eq!(Learnt::parse(&l.to_text()), Some(l.clone()));
        let v4 = Learnt {
            version: Version::V4_2,
            known: None,
            ..l
        };
        assert_eq!(Learnt::parse(&v4.to_text()), Some(v4));
        assert_eq!(Learnt::parse("server=x\n"), None);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
