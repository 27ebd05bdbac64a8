//! Mount and unmount, bounded in time, by identity.
//!
//! The mount point is walked from `/` without following a link ([`mount_point`]), and
//! `mount(2)` runs in a child (the kernel's v3 MOUNT call or v4 session setup can block on a
//! hung server) on the directory that walk pinned. Unmount tries a plain `umount` first and
//! signals nobody when nothing holds the share; then it looks at every process of the node,
//! in every mount namespace — holders named in the log, TERM, then KILL; copies in other
//! namespaces unmounted there; `umount`; `umount -f` (which also aborts the mount's pending
//! RPCs, releasing processes stuck on it); a lazy detach only when no holder is left — each
//! step in a child with its share of the deadline, each aimed at one mount by identity; a last
//! look decides whether anything on the node still reaches the share.

use std::ffi::{CStr, CString};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::child::{self, ChildEnd};
use crate::mountinfo::{self, MountEntry};
use crate::options::{MountRequest, NfsConfig};
use crate::users::{self, User};
use crate::{Error, ErrorKind, net, sys};

mod walk;

pub use walk::{MountPoint, mount_point};

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

/// One `mount(2)` call in a child, bounded by `deadline`, on the directory with device and
/// inode `dir` at the mount point.
fn mount_once(
    req: &MountRequest,
    dir: ((u32, u32), u64),
    deadline: Instant,
) -> Result<Result<(), Errno>, Error> {
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
        dir,
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

/// Take off the mount this call made, `made`, by its identity wherever it is now (never by
/// the configured path): umount, else detach. True when mountinfo no longer shows it.
fn undo(made: &MountEntry, deadline: Instant) -> bool {
    for flags in [0, libc::MNT_DETACH] {
        let until = share(deadline, 2);
        match child::umount_mount(made, flags, until) {
            Ok(ChildEnd::Done(Ok(()))) => {}
            other => {
                log::debug!(
                    "undo: umount2 of mount {} ({}, {flags:#x}): {other:?}",
                    made.mount_id,
                    made.mount_point
                );
                continue;
            }
        }
        let gone = read_mounts()
            .map(|m| !m.iter().any(|e| e.mount_id == made.mount_id))
            .unwrap_or(false);
        if gone {
            return true;
        }
    }
    false
}

/// Mount `cfg` (the mount point must be a directory with nothing mounted on it), then confirm
/// it in mountinfo. The mount point is walked without following a link and the mount made on
/// the directory found ([`child::mount`]), never stacked on another mount. VERSION=4 tries
/// 4.2, 4.1, 4.0 in turn (none above `max_minor`, the server's highest minor version when a
/// probe learnt it) and keeps the first that the kernel and the server accept. A mount that
/// mountinfo does not show as ours at the mount point is taken off again by its identity,
/// wherever it is now, before the error is returned: nothing is left behind. Returns the
/// request that was used (its `version` is the one mounted).
pub fn mount(
    cfg: &NfsConfig,
    max_minor: Option<u32>,
    deadline: Instant,
) -> Result<MountRequest, Error> {
    let mp = &cfg.mount_point;
    let (dir, on) = match mount_point(mp, false)? {
        MountPoint::Dir { dev, ino, mnt_id } => (((dev), ino), (mnt_id, dev)),
        MountPoint::Missing => {
            return Err(Error::new(
                ErrorKind::Failed,
                format!("mount point {mp} does not exist"),
            ));
        }
        MountPoint::Other => {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "MOUNTPOINT {mp} exists but is not a directory: remove it or choose another MOUNTPOINT"
                ),
            ));
        }
    };
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
        match mount_once(&r, dir, deadline)? {
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
    // what this call mounted: new, NFS, on the mount the mount point directory lies on
    let made: Vec<&MountEntry> = after
        .iter()
        .filter(|e| !before.contains(&e.mount_id) && e.is_nfs())
        .filter(|e| match on {
            (Some(parent), _) => u64::from(e.parent_id) == parent,
            (None, dev) => after
                .iter()
                .any(|p| p.mount_id == e.parent_id && (p.major, p.minor) == dev),
        })
        .collect();
    match state(cfg, &after) {
        State::Ours { entry, mismatches } if made.iter().any(|m| m.mount_id == entry.mount_id) => {
            if !mismatches.is_empty() {
                log::warn!(
                    "mounted {} on {} but it differs from the configuration: {}",
                    req.source,
                    req.target,
                    mismatches.join("; ")
                );
            }
            return Ok(req);
        }
        _ => {}
    }
    let found = mountinfo::find_at(&after, &req.target);
    let (kind, mut msg) = describe_foreign(cfg, &req, found, &after);
    if let Some(away) = made.iter().find(|m| m.path.as_os_str() != mp.as_str()) {
        msg.push_str(&format!(
            "; the mount appeared at {} instead (a directory on the way was renamed while mounting)",
            away.mount_point
        ));
    }
    let mut left = Vec::new();
    for m in &made {
        if !undo(m, deadline) {
            left.push(m.mount_point.as_str());
        }
    }
    let tail = match (made.is_empty(), left.is_empty()) {
        (true, _) => String::new(),
        (false, true) => "; the mount was taken off again, nothing is left mounted".to_string(),
        (false, false) => format!(
            "; the mount could not be taken off again: unmount {} by hand",
            left.join(", ")
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
    /// Processes that held the share (in any mount namespace) and were signalled, then those
    /// of namespaces whose copy could not be unmounted (none when nothing held it).
    pub signalled: Vec<User>,
    /// Pids still alive after TERM and KILL (stuck in the kernel).
    pub survivors: Vec<i32>,
    /// Mounts removed (mount point, method), deepest first.
    pub removed: Vec<(String, Method)>,
    /// Copies removed in other mount namespaces: (mount point there, namespace, method).
    pub copies: Vec<(String, String, Method)>,
}

/// How one `umount2` of one mount ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Done,
    /// The mount's path no longer leads to it (renamed, replaced by a link,
    /// unmounted by someone else): nothing was unmounted.
    Elsewhere,
    /// The kernel will not unmount it in its namespace (locked there).
    Locked,
    /// Busy, refused, or no answer in time.
    Failed,
}

fn umount_step(
    ns: Option<&users::Namespace>,
    target: &MountEntry,
    flags: libc::c_int,
    until: Instant,
) -> Result<Step, Error> {
    let mp = &target.mount_point;
    let place = ns
        .map(|n| format!(" in mount namespace {}", n.name()))
        .unwrap_or_default();
    match child::umount_mount_in(ns.map(users::Namespace::fd), target, flags, until) {
        Ok(ChildEnd::Done(Ok(()))) => Ok(Step::Done),
        Ok(ChildEnd::Done(Err(Errno::EPERM))) if ns.is_some() => {
            log::debug!("umount2({mp}, {flags:#x}){place}: the mount is locked there");
            Ok(Step::Locked)
        }
        Ok(ChildEnd::Done(Err(
            e @ (Errno::EXDEV | Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP | Errno::EINVAL),
        ))) => {
            log::debug!(
                "umount2 of mount {} ({mp}, {flags:#x}){place}: {}: its path leads elsewhere now",
                target.mount_id,
                e.desc()
            );
            Ok(Step::Elsewhere)
        }
        Ok(ChildEnd::Done(Err(e))) => {
            log::debug!("umount2({mp}, {flags:#x}){place}: {}", e.desc());
            Ok(Step::Failed)
        }
        Ok(ChildEnd::TimedOutKilled) | Ok(ChildEnd::Stuck(_)) => {
            log::debug!("umount2({mp}, {flags:#x}){place} did not return in time");
            Ok(Step::Failed)
        }
        Err(e) => Err(Error::new(
            ErrorKind::Failed,
            format!("cannot start umount of {mp}{place}: {e}"),
        )),
    }
}

fn share(deadline: Instant, parts: u32) -> Instant {
    let left = deadline.saturating_duration_since(Instant::now());
    Instant::now() + left / parts.max(1)
}

/// How one mount went through [`escalate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escalation {
    Removed(Method),
    /// Its path leads elsewhere now: look it up again.
    Moved,
    /// Locked in its namespace: only ending that namespace's processes frees it.
    Locked,
    /// Every step failed.
    Stuck,
}

/// How far unmounting may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// One plain umount of each mount: nobody is signalled.
    Plain,
    /// Plain; the holders found again and ended (a child of an ended holder may have kept
    /// it busy), plain; forced (aborting the mount's requests, which releases calls stuck on
    /// it), the holders ended again, plain; then a lazy detach, only when that last look found
    /// no holder left that could keep writing through the detached mount.
    Full,
}

/// One step of [`escalate`]: a `umount2` with these flags (and its share of the time left),
/// or another look for holders.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Umount(libc::c_int, Method, u32),
    EndHolders,
}

/// One mount (of namespace `ns`, ours when `None`) through the steps of `plan`.
fn escalate(
    ns: Option<&users::Namespace>,
    target: &MountEntry,
    share_of: &users::Target,
    plan: Plan,
    deadline: Instant,
    report: &mut UnmountReport,
) -> Result<Escalation, Error> {
    use Stage::{EndHolders, Umount};
    let full = [
        Umount(0, Method::Normal, 6),
        EndHolders,
        Umount(0, Method::Normal, 5),
        Umount(libc::MNT_FORCE, Method::Forced, 4),
        EndHolders,
        Umount(0, Method::Forced, 3),
        Umount(libc::MNT_DETACH, Method::Lazy, 1),
    ];
    let stages: &[Stage] = match plan {
        Plan::Plain => &[Umount(0, Method::Normal, 1)],
        Plan::Full => &full,
    };
    // whether the last look left nobody who could write through a detached mount
    let mut nobody = false;
    for stage in stages {
        match *stage {
            EndHolders => {
                let before = report.survivors.len();
                let scan = end_holders(share_of, share(deadline, 4), report, true);
                nobody =
                    scan.is_some_and(|s| s.kept.is_empty()) && report.survivors.len() == before;
            }
            Umount(libc::MNT_DETACH, ..) if !nobody => {
                log::debug!(
                    "{} is not detached lazily: a holder may be left",
                    target.mount_point
                );
            }
            Umount(flags, method, parts) => {
                match umount_step(ns, target, flags, share(deadline, parts))? {
                    Step::Done => return Ok(Escalation::Removed(method)),
                    Step::Elsewhere => return Ok(Escalation::Moved),
                    Step::Locked => return Ok(Escalation::Locked),
                    Step::Failed => {}
                }
            }
        }
    }
    Ok(Escalation::Stuck)
}

/// Find the processes holding the share in every namespace and end those that may be ended
/// (TERM, then KILL); returns the scan, `None` when it did not finish by `until`.
fn end_holders(
    t: &users::Target,
    until: Instant,
    report: &mut UnmountReport,
    again: bool,
) -> Option<users::Scan> {
    let scan = users::scan_within(t, until)?;
    if !scan.users.is_empty() {
        log::warn!(
            "{} is {}busy; ending the processes holding it: {}",
            t.path.display(),
            if again { "still " } else { "" },
            users::describe(&scan.users)
        );
        let left = until.saturating_duration_since(Instant::now());
        let grace = Duration::from_secs(5).min(left / 2);
        report
            .survivors
            .extend(users::terminate(&scan.users, grace, until));
        report.signalled.extend(scan.users.iter().cloned());
    }
    Some(scan)
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

/// Unmount every mount of `root`'s tree (and the copies it covered), deepest
/// first, each through [`escalate`], until `deadline`. True when nothing is
/// left. A mount whose path was changed under us is looked up again a few
/// times (mountinfo shows the new path), then left to the caller.
fn clear(
    root: &mut MountEntry,
    mount_point: &str,
    share_of: &users::Target,
    plan: Plan,
    deadline: Instant,
    report: &mut UnmountReport,
) -> Result<bool, Error> {
    let mut moved = 0;
    // each mount is attempted a bounded number of times (bounded by the tree's size)
    for _ in 0..64 {
        let entries = read_mounts()?;
        let Some(next) = remaining_root(&entries, mount_point, root) else {
            return Ok(true);
        };
        *root = next;
        let Some(target) = mountinfo::tree(&entries, root)
            .first()
            .map(|e| (*e).clone())
        else {
            return Ok(true);
        };
        if Instant::now() >= deadline {
            return Ok(false);
        }
        let how = escalate(None, &target, share_of, plan, deadline, report)?;
        let gone = !mountinfo::tree(&read_mounts()?, root)
            .iter()
            .any(|e| e.mount_id == target.mount_id);
        match how {
            Escalation::Removed(m) if gone => {
                log::debug!("unmounted {} ({m:?})", target.mount_point);
                report.removed.push((target.mount_point, m));
            }
            // an umount that did not return in time had taken it off already (it hung in the
            // file system's teardown, e.g. talking to the server)
            Escalation::Stuck if gone => report.removed.push((target.mount_point, Method::Normal)),
            _ if gone => {}
            Escalation::Moved if moved < 3 => moved += 1,
            _ => {
                log::debug!(
                    "{} (mount {}) is still mounted after {how:?}",
                    target.mount_point,
                    target.mount_id
                );
                return Ok(false);
            }
        }
    }
    Ok(false)
}

/// Unmount the copies of the share in mount namespace `ns`, deepest first, each by identity
/// in that namespace. True when the kernel will not unmount one there (locked): only ending
/// the namespace's processes frees it then.
fn clear_copies(
    ns: &users::Namespace,
    share_of: &users::Target,
    plan: Plan,
    deadline: Instant,
    report: &mut UnmountReport,
) -> Result<bool, Error> {
    for copy in &ns.copies {
        match escalate(Some(ns), copy, share_of, plan, deadline, report)? {
            Escalation::Removed(m) => {
                log::debug!("unmounted {} in {} ({m:?})", copy.mount_point, ns.name());
                report.copies.push((copy.mount_point.clone(), ns.name(), m));
            }
            Escalation::Locked => return Ok(true),
            // gone with its parent, or moved: the last look says what is left
            Escalation::Moved | Escalation::Stuck => {}
        }
    }
    Ok(false)
}

/// End every process of namespace `ns` (its copy of the share cannot be unmounted, so each of
/// them reaches the share by path), unless PID 1, this process or an ancestor lives there.
fn end_namespace(ns: &users::Namespace, until: Instant, report: &mut UnmountReport) {
    let copy = ns
        .copies
        .last()
        .map(|c| c.mount_point.clone())
        .unwrap_or_default();
    if let Some((pid, comm)) = &ns.guarded {
        log::warn!(
            "the copy of the share at {copy} in mount namespace {} cannot be unmounted there, and {pid} ({comm}) lives in it (never signalled)",
            ns.name()
        );
        return;
    }
    log::warn!(
        "the copy of the share at {copy} in mount namespace {} cannot be unmounted there (locked); ending the processes of that namespace: {}",
        ns.name(),
        users::describe(&ns.members)
    );
    let left = until.saturating_duration_since(Instant::now());
    report.survivors.extend(users::terminate(
        &ns.members,
        Duration::from_secs(5).min(left / 2),
        until,
    ));
    report.signalled.extend(ns.members.iter().cloned());
}

/// What still reaches the share after `unmount`'s work, in words; empty when nothing does.
fn still_reached(
    mount_point: &str,
    root: &MountEntry,
    scan: &users::Scan,
) -> Result<Vec<String>, Error> {
    let mut left = Vec::new();
    if remaining_root(&read_mounts()?, mount_point, root).is_some() {
        left.push(format!("{mount_point} is still mounted"));
    }
    if !scan.users.is_empty() {
        left.push(format!("still held by {}", users::describe(&scan.users)));
    }
    if !scan.kept.is_empty() {
        left.push(format!(
            "still held by {}, which is never signalled (PID 1, this hook or its caller)",
            users::describe(&scan.kept)
        ));
    }
    for ns in &scan.namespaces {
        let at: Vec<&str> = ns
            .copies
            .iter()
            .filter(|c| !ns.copies.iter().any(|o| o.mount_id == c.parent_id))
            .map(|c| c.mount_point.as_str())
            .collect();
        left.push(format!(
            "still mounted at {} in mount namespace {} (whose processes are {})",
            at.join(", "),
            ns.name(),
            users::describe(&ns.members)
        ));
    }
    Ok(left)
}

/// Unmount the mount at `mount_point`, everything stacked on it or mounted inside it, and
/// every copy of it in other mount namespaces, within `deadline`; succeed only when no process
/// of the node can reach the share any more.
///
/// First a plain unmount, deepest mount first, signalling nobody. Then one look at every
/// process (in every mount namespace, by mount and device identity, see [`users`]): holders
/// are named in the log and ended (TERM, then KILL) — never PID 1, this process or its
/// ancestors. Copies in other namespaces are unmounted there by identity (a child enters the
/// pinned namespace); a copy the kernel will not unmount there (locked in a namespace of
/// another user namespace) is freed by ending that namespace's processes. Each mount still
/// here goes through umount, forced umount, umount, and a lazy detach only when no holder is
/// left that could write through the detached mount. A last look decides: any process still
/// holding the share, any copy still mounted anywhere, is named in the error. Every mount is
/// unmounted by identity (see [`child::umount_mount`]): no path a local user can change steers
/// an unmount outside the tree. Other mounts that only lie below the path (mounted there
/// before this one covered them) are left alone. Nothing mounted there is success
/// (idempotent).
pub fn unmount(mount_point: &str, deadline: Instant) -> Result<UnmountReport, Error> {
    let mut report = UnmountReport::default();
    let entries = read_mounts()?;
    let Some(mut root) = mountinfo::find_at(&entries, mount_point).cloned() else {
        return Ok(report);
    };
    let share_of = users::Target::of(&entries, &root);
    if !share_of.devs.contains(&(root.major, root.minor)) {
        let other = entries
            .iter()
            .filter(|e| (e.major, e.minor) == (root.major, root.minor))
            .find(|e| !share_of.ids.contains(&e.mount_id))
            .map_or_else(String::new, |e| format!(" at {}", e.mount_point));
        log::info!(
            "the file system of {mount_point} is also mounted{other} (another mount of the same server file system, or a bind mount of part of it): its holders are known by mount, and its copies in other mount namespaces by their place or propagation group"
        );
    }
    // time kept for the last look
    let reserve =
        (deadline.saturating_duration_since(Instant::now()) / 6).min(Duration::from_secs(2));
    let soft = deadline.checked_sub(reserve).unwrap_or(deadline);
    let mut gone = clear(
        &mut root,
        mount_point,
        &share_of,
        Plan::Plain,
        share(soft, 4),
        &mut report,
    )?;
    let scan = end_holders(&share_of, share(soft, 3), &mut report, false);
    if let Some(s) = &scan
        && gone
        && s.users.is_empty()
        && s.kept.is_empty()
        && s.namespaces.is_empty()
    {
        // unmounted, and nothing anywhere holds or mounts it: that look was the last one
        return Ok(report);
    }
    for ns in scan.iter().flat_map(|s| &s.namespaces) {
        let until = share(soft, 2);
        if clear_copies(ns, &share_of, Plan::Full, until, &mut report)? {
            end_namespace(ns, until, &mut report);
        }
    }
    drop(scan);
    if !gone {
        gone = clear(
            &mut root,
            mount_point,
            &share_of,
            Plan::Full,
            soft,
            &mut report,
        )?;
    }
    let Some(last) = users::scan_within(&share_of, deadline) else {
        return Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "{mount_point}: could not make sure that no process still reaches the share (listing the processes did not finish in time)"
            ),
        ));
    };
    let left = still_reached(mount_point, &root, &last)?;
    if left.is_empty() {
        return Ok(report);
    }
    log::debug!("{mount_point}: every mount of this namespace's tree taken off: {gone}");
    Err(Error::new(
        ErrorKind::Failed,
        format!(
            "{mount_point} can still be reached on this node: {}: end those processes (or unmount the copies) by hand, then run remove again",
            left.join("; ")
        ),
    ))
}

#[cfg(test)]
mod tests;
