//! Mount and unmount, bounded in time.
//!
//! `mount(2)` runs in a child (the kernel's v3 MOUNT call or v4 session setup
//! can block on a hung server). Unmount follows the usual escalation —
//! processes TERM, then KILL; `umount`; `umount -f` (which also aborts the
//! mount's pending RPCs, releasing processes stuck on it); lazy detach as the
//! last resort — each step in a child with its share of the deadline.

use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::child::{self, ChildEnd};
use crate::mountinfo::{self, MountEntry};
use crate::options::{MountRequest, NfsConfig};
use crate::users::{self, User};
use crate::{Error, ErrorKind, net};

/// What is mounted at the configured mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    NotMounted,
    /// Our export, as configured; `mismatches` lists option differences.
    Ours {
        entry: MountEntry,
        mismatches: Vec<String>,
    },
    /// Something else (another source or file system type).
    Other(MountEntry),
}

/// Classify the mount at `cfg.mount_point` from mountinfo.
pub fn state(cfg: &NfsConfig, entries: &[MountEntry]) -> State {
    match mountinfo::find_at(entries, &cfg.mount_point) {
        None => State::NotMounted,
        Some(e) => {
            let same_source =
                e.is_nfs() && e.source.trim_end_matches('/') == cfg.source().trim_end_matches('/');
            if same_source {
                State::Ours {
                    entry: e.clone(),
                    mismatches: cfg.verify(e),
                }
            } else {
                State::Other(e.clone())
            }
        }
    }
}

fn read_mounts() -> Result<Vec<MountEntry>, Error> {
    mountinfo::read_self().map_err(|e| {
        Error::new(
            ErrorKind::Failed,
            format!("cannot read /proc/self/mountinfo: {e}"),
        )
    })
}

fn errno_hint(e: Errno) -> &'static str {
    match e {
        Errno::EACCES | Errno::EPERM => {
            "the server refused the mount: check the export's client list and that we run as root"
        }
        Errno::ENOENT => "the export or the mount point does not exist",
        Errno::EINVAL => "the kernel rejected the options: check OPTIONS and VERSION",
        Errno::EPROTONOSUPPORT | Errno::ENODEV => {
            "this NFS version is not available: load the nfs/nfsv4 kernel modules or change VERSION"
        }
        Errno::ECONNREFUSED => "the server refused the connection: is the NFS service running?",
        Errno::ETIMEDOUT | Errno::EIO => "the server did not answer",
        Errno::EBUSY => "something is already mounted there or the mount point is busy",
        _ => "see the kernel log (dmesg) for details",
    }
}

/// One `mount(2)` call in a child, bounded by `deadline`.
fn mount_once(req: &MountRequest, deadline: Instant) -> Result<Result<(), Errno>, Error> {
    log::debug!(
        "mount -t {} -o {} (flags {:#x}) {} {}",
        req.fstype,
        req.data,
        req.flags,
        req.source,
        req.target
    );
    let end = child::mount(
        &req.source,
        &req.target,
        req.fstype,
        req.flags,
        &req.data,
        deadline,
    )
    .map_err(|e| Error::new(ErrorKind::Failed, format!("cannot start mount: {e}")))?;
    match end {
        ChildEnd::Done(r) => Ok(r),
        ChildEnd::TimedOutKilled | ChildEnd::Stuck(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "mount of {} on {} did not finish in time: the server is not answering",
                req.source, req.target
            ),
        )),
    }
}

/// `server:/export` split into the server part (brackets removed) and the export.
fn split_source(source: &str) -> Option<(&str, &str)> {
    let (host, export) = if let Some(rest) = source.strip_prefix('[') {
        let (h, e) = rest.split_once("]:")?;
        (h, e)
    } else {
        source.split_once(':')?
    };
    Some((host, export.trim_end_matches('/')))
}

/// Why the mount just made is not ours, from what mountinfo shows at the mount point
/// (`found`), and whether that is a configuration matter (exit 2) rather than a failure.
fn describe_foreign(
    cfg: &NfsConfig,
    req: &MountRequest,
    found: Option<&MountEntry>,
    entries: &[MountEntry],
) -> (ErrorKind, String) {
    let (src, mp) = (&req.source, &req.target);
    let Some(e) = found else {
        return (
            ErrorKind::Failed,
            format!(
                "mount of {src} on {mp} reported success but mountinfo shows nothing mounted on {mp}"
            ),
        );
    };
    let export = cfg.export.trim_end_matches('/');
    let addr = e.option("addr").flatten().unwrap_or("");
    let same_export = split_source(&e.source).is_some_and(|(_, x)| {
        let x = if x.is_empty() { "/" } else { x };
        x == export
    });
    if e.is_nfs() && same_export && !addr.is_empty() && addr != cfg.server.to_string() {
        let other = entries
            .iter()
            .filter(|o| o.mount_point != *mp && o.is_nfs())
            .find(|o| o.option("addr").flatten() == Some(addr))
            .map(|o| format!(", which {} is mounted by", o.mount_point))
            .unwrap_or_default();
        return (
            ErrorKind::Config,
            format!(
                "mount of {src} on {mp}: the kernel merged this mount onto the existing connection to the same server at {addr}{other} (mountinfo shows {} addr={addr}): an NFSv{} client uses one connection per server, so every resource on this server must name it by the same address: set SERVER={addr} (or VERSION=4.0 or 3)",
                e.source, req.version
            ),
        );
    }
    (
        ErrorKind::Failed,
        format!(
            "mount of {src} on {mp} reported success but mountinfo shows {} ({}{}) there instead",
            e.source,
            e.fstype,
            if addr.is_empty() {
                String::new()
            } else {
                format!(", addr={addr}")
            }
        ),
    )
}

/// Take off the mount this call made at `target` (mount id `id`): umount, else detach.
fn undo(target: &str, id: u32, deadline: Instant) -> bool {
    for flags in [0, libc::MNT_DETACH] {
        let until = share(deadline, 2);
        match child::umount(target, flags, until) {
            Ok(ChildEnd::Done(Ok(()))) => {}
            other => {
                log::debug!("undo: umount2({target}, {flags:#x}): {other:?}");
                continue;
            }
        }
        let gone = read_mounts()
            .map(|m| !m.iter().any(|e| e.mount_id == id))
            .unwrap_or(false);
        if gone {
            return true;
        }
    }
    false
}

/// Mount `cfg` (the mount point must exist and hold nothing), then confirm it in
/// mountinfo. VERSION=4 tries 4.2, 4.1, 4.0 in turn (none above `max_minor`, the
/// server's highest minor version when a probe learnt it) and keeps the first that
/// the kernel and the server accept. A mount that mountinfo does not show as ours is
/// taken off again before the error is returned: nothing is left behind that the
/// caller does not own. Returns the request that was used (its `version` is the one
/// mounted).
pub fn mount(
    cfg: &NfsConfig,
    max_minor: Option<u32>,
    deadline: Instant,
) -> Result<MountRequest, Error> {
    let client = if cfg.version.is_v4() {
        net::local_addr_towards(cfg.server).ok()
    } else {
        None
    };
    let before: Vec<u32> = read_mounts()?.iter().map(|e| e.mount_id).collect();
    let candidates = cfg.version.candidates(max_minor);
    let mut tried = Vec::new();
    let mut req = None;
    for (i, v) in candidates.iter().enumerate() {
        let exact = NfsConfig {
            version: *v,
            ..cfg.clone()
        };
        let r = exact.mount_request(client);
        match mount_once(&r, deadline)? {
            Ok(()) => {
                req = Some(r);
                break;
            }
            Err(Errno::EPROTONOSUPPORT) if i + 1 < candidates.len() => {
                log::info!(
                    "NFS {v} is not offered by {} or this kernel (EPROTONOSUPPORT); trying {}",
                    cfg.server,
                    candidates[i + 1]
                );
                tried.push(v.as_str());
            }
            Err(e) => {
                let also = if tried.is_empty() {
                    String::new()
                } else {
                    format!("; also tried NFS {}", tried.join(", "))
                };
                return Err(Error::new(
                    ErrorKind::Failed,
                    format!(
                        "mount of {} on {} (NFS {v}) failed: {} ({}){also}",
                        r.source,
                        r.target,
                        e.desc(),
                        errno_hint(e)
                    ),
                ));
            }
        }
    }
    let Some(req) = req else {
        return Err(Error::new(
            ErrorKind::Failed,
            format!("no NFS version to try for VERSION={}", cfg.version),
        ));
    };
    let after = read_mounts()?;
    match state(cfg, &after) {
        State::Ours { mismatches, .. } if mismatches.is_empty() => return Ok(req),
        State::Ours { mismatches, .. } => {
            log::warn!(
                "mounted {} on {} but it differs from the configuration: {}",
                req.source,
                req.target,
                mismatches.join("; ")
            );
            return Ok(req);
        }
        _ => {}
    }
    let found = mountinfo::find_at(&after, &req.target);
    let (kind, msg) = describe_foreign(cfg, &req, found, &after);
    let made = found.filter(|e| !before.contains(&e.mount_id));
    let tail = match made {
        None => String::new(),
        Some(e) if undo(&req.target, e.mount_id, deadline) => {
            "; the mount was taken off again, nothing is left mounted".to_string()
        }
        Some(_) => format!(
            "; the mount could not be taken off again: unmount {} by hand",
            req.target
        ),
    };
    Err(Error::new(kind, format!("{msg}{tail}")))
}

/// How the last mount at the mount point was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Normal,
    Forced,
    Lazy,
}

/// What `unmount` did.
#[derive(Debug, Clone, Default)]
pub struct UnmountReport {
    /// Processes that held the mount and were signalled.
    pub signalled: Vec<User>,
    /// Pids still alive after TERM and KILL (stuck in the kernel).
    pub survivors: Vec<i32>,
    /// Mounts removed (mount point, method), deepest first.
    pub removed: Vec<(String, Method)>,
}

fn umount_step(target: &str, flags: libc::c_int, until: Instant) -> Result<bool, Error> {
    match child::umount(target, flags, until) {
        Ok(ChildEnd::Done(Ok(()))) => Ok(true),
        // EINVAL: no longer a mount point (someone else removed it)
        Ok(ChildEnd::Done(Err(Errno::EINVAL))) | Ok(ChildEnd::Done(Err(Errno::ENOENT))) => Ok(true),
        Ok(ChildEnd::Done(Err(e))) => {
            log::debug!("umount2({target}, {flags:#x}): {}", e.desc());
            Ok(false)
        }
        Ok(ChildEnd::TimedOutKilled) | Ok(ChildEnd::Stuck(_)) => {
            log::debug!("umount2({target}, {flags:#x}) did not return in time");
            Ok(false)
        }
        Err(e) => Err(Error::new(
            ErrorKind::Failed,
            format!("cannot start umount of {target}: {e}"),
        )),
    }
}

fn share(deadline: Instant, parts: u32) -> Instant {
    let left = deadline.saturating_duration_since(Instant::now());
    Instant::now() + left / parts.max(1)
}

/// One mount point through the escalation: umount, forced umount (after which
/// users stuck on the mount may be gone: they are ended again), umount, lazy
/// detach. `None` when every step failed.
fn escalate(
    target: &str,
    mount_point: &str,
    dev: Option<(u32, u32)>,
    deadline: Instant,
    report: &mut UnmountReport,
) -> Result<Option<Method>, Error> {
    if umount_step(target, 0, share(deadline, 4))? {
        return Ok(Some(Method::Normal));
    }
    if umount_step(target, libc::MNT_FORCE, share(deadline, 3))? {
        return Ok(Some(Method::Forced));
    }
    // MNT_FORCE aborted the mount's RPCs: stuck users may be gone now
    if let Some(again) = users::find_within(mount_point, dev, share(deadline, 4))
        && !again.is_empty()
    {
        report.survivors = users::terminate(&again, Duration::from_millis(200), share(deadline, 3));
    }
    if umount_step(target, 0, share(deadline, 3))? {
        Ok(Some(Method::Forced))
    } else if umount_step(target, libc::MNT_DETACH, deadline)? {
        Ok(Some(Method::Lazy))
    } else {
        Ok(None)
    }
}

/// The mount still to remove: `root` while mountinfo shows it, else a copy of
/// it that it covered (the same source and type stacked at `mount_point`,
/// e.g. mounted twice by hand), else nothing.
fn remaining_root(
    entries: &[MountEntry],
    mount_point: &str,
    root: &MountEntry,
) -> Option<MountEntry> {
    if !mountinfo::tree(entries, root).is_empty() {
        return Some(root.clone());
    }
    mountinfo::find_at(entries, mount_point)
        .filter(|e| e.source == root.source && e.fstype == root.fstype)
        .cloned()
}

/// Unmount the mount at `mount_point` and everything stacked on it or mounted
/// inside it, within `deadline`: end the processes using it, then umount,
/// forced umount, lazy detach; then the same for copies of it it covered.
/// Other mounts that only lie below the path (mounted there before this one
/// covered them) are left alone. Nothing mounted there is success (idempotent).
pub fn unmount(mount_point: &str, deadline: Instant) -> Result<UnmountReport, Error> {
    let mut report = UnmountReport::default();
    let mut entries = read_mounts()?;
    let Some(root) = mountinfo::find_at(&entries, mount_point).cloned() else {
        return Ok(report);
    };
    // The device number identifies the mount's files in /proc/PID/maps, unless the
    // superblock is shared with another mount (the same export mounted twice).
    let dev = Some((root.major, root.minor))
        .filter(|d| entries.iter().filter(|e| (e.major, e.minor) == *d).count() == 1);
    let found = users::find_within(mount_point, dev, share(deadline, 4)).unwrap_or_default();
    if !found.is_empty() {
        let grace =
            Duration::from_secs(5).min(deadline.saturating_duration_since(Instant::now()) / 4);
        report.survivors = users::terminate(&found, grace, share(deadline, 3));
        report.signalled = found;
    }
    // Children before parents; each mount is attempted once (bounded by the tree's size).
    let mut root = root;
    for _ in 0..16 {
        let Some(next) = remaining_root(&entries, mount_point, &root) else {
            return Ok(report);
        };
        root = next;
        let Some(target) = mountinfo::tree(&entries, &root)
            .first()
            .map(|e| (*e).clone())
        else {
            return Ok(report);
        };
        if Instant::now() >= deadline {
            break;
        }
        let Some(method) = escalate(&target.mount_point, mount_point, dev, deadline, &mut report)?
        else {
            break;
        };
        entries = read_mounts()?;
        if mountinfo::tree(&entries, &root)
            .iter()
            .any(|e| e.mount_id == target.mount_id)
        {
            // umount2 of the path reached another mount (EINVAL): this one is hidden
            log::debug!(
                "{} (mount {}) is still mounted after {method:?} umount",
                target.mount_point,
                target.mount_id
            );
            break;
        }
        log::debug!("unmounted {} ({method:?})", target.mount_point);
        report.removed.push((target.mount_point, method));
    }
    if remaining_root(&read_mounts()?, mount_point, &root).is_none() {
        return Ok(report);
    }
    Err(Error::new(
        ErrorKind::Timeout,
        format!(
            "could not unmount {mount_point} in time (still mounted after normal, forced and lazy attempts); {} process(es) still hold it",
            report.survivors.len()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    /// B mounted 192.0.2.1:/export (4.1); the kernel merged it onto A's connection to
    /// 127.0.0.1 (as captured from kernel 6.1 against knfsd).
    const MERGED: &str = "\
40 1 0:50 / /mnt/ka rw,relatime - nfs4 127.0.0.1:/export rw,vers=4.2,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=127.0.0.1,local_lock=none,addr=127.0.0.1
41 1 0:50 / /mnt/kb rw,relatime - nfs4 127.0.0.1:/export rw,vers=4.2,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=127.0.0.1,local_lock=none,addr=127.0.0.1
";

    fn cfg(server: &str, mp: &str, v: crate::Version) -> NfsConfig {
        let ip: IpAddr = server.parse().unwrap();
        NfsConfig::new(ip, "/export", mp, v, None).unwrap()
    }

    #[test]
    fn merged_mount_is_named_as_such() {
        let e = mountinfo::parse(MERGED).unwrap();
        let b = cfg("192.0.2.1", "/mnt/kb", crate::Version::V4_1);
        assert!(matches!(state(&b, &e), State::Other(_)));
        let req = b.mount_request(None);
        let (kind, msg) = describe_foreign(&b, &req, mountinfo::find_at(&e, "/mnt/kb"), &e);
        assert_eq!(kind, ErrorKind::Config);
        assert!(
            msg.contains("merged this mount onto the existing connection to the same server at 127.0.0.1, which /mnt/ka is mounted by"),
            "{msg}"
        );
        assert!(msg.contains("set SERVER=127.0.0.1"), "{msg}");
        // something else entirely, or nothing: a failure, not a configuration matter
        let other = cfg("192.0.2.1", "/mnt/ka", crate::Version::V4_1);
        let o = NfsConfig {
            export: "/other".into(),
            ..other
        };
        let req = o.mount_request(None);
        let (kind, msg) = describe_foreign(&o, &req, mountinfo::find_at(&e, "/mnt/ka"), &e);
        assert_eq!(kind, ErrorKind::Failed);
        assert!(
            msg.contains("shows 127.0.0.1:/export (nfs4, addr=127.0.0.1)"),
            "{msg}"
        );
        let (kind, msg) = describe_foreign(&o, &req, None, &e);
        assert_eq!(kind, ErrorKind::Failed);
        assert!(msg.contains("nothing mounted"), "{msg}");
    }

    #[test]
    fn sources_split_into_server_and_export() {
        assert_eq!(
            split_source("10.0.2.2:/export/"),
            Some(("10.0.2.2", "/export"))
        );
        assert_eq!(split_source("[fd00::2]:/e"), Some(("fd00::2", "/e")));
        assert_eq!(split_source("nocolon"), None);
    }
}
