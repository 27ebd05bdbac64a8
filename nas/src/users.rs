//! Which processes hold a share, found by walking `/proc` — never `fuser`, which stats every
//! open file and so hangs on any dead NFS mount — in every mount namespace of the node.
//!
//! Each process is pinned while it is inspected and signalled: its `/proc/PID` directory is
//! opened once, its start time read first through that descriptor, everything else read
//! through it, and signals go through it with `pidfd_send_signal(2)`, so a pid reused by
//! another process meanwhile is never inspected or signalled in its place. Never signalled:
//! PID 1, this process and its ancestors (the hook's callers); those are reported as
//! [`Scan::kept`] when they hold the share.
//!
//! The share is known by identity, never by path (paths differ between mount namespaces): the
//! mount ids of the tree being removed and the devices of its superblocks ([`Target`]). A
//! process holds it when its working directory, root, executable or an open descriptor lies on
//! one of those mounts or devices (`statx` of the `/proc` links with `STATX_MNT_ID`, which
//! does not ask the server for fresh attributes; `mnt_id` of `fdinfo`), or a memory mapping
//! lies on one of the devices. A mount of one of the devices in another mount namespace — a
//! copy that namespace got at its creation or by propagation, with whatever is mounted on or
//! in it — is a [`Namespace`] copy: its processes reach the share through it by path, and its
//! holders are holders like any other. Kernels before 5.8 report no mount id for a link: its
//! device decides then.
//!
//! A process stuck *inside* a path system call on a dead mount (an `open` or `stat` waiting
//! for the server) holds no descriptor yet. For those, `/proc/PID/task/TID/syscall` gives each
//! thread's blocked call and its arguments, and the path argument is read from the process's
//! memory (`/proc/PID/mem`) and compared with the mount points of the share in the process's
//! own mount namespace, as bytes, below the process's root (x86_64 system call numbers).

use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsString};
use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::fcntl::{OFlag, open, openat};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use crate::mountinfo::{self, MountEntry};
use crate::sys;

/// The share being removed, by identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// Mount ids of the root and every mount on or in it.
    pub ids: Vec<u32>,
    /// Their device numbers that no mount of the table outside the tree shares: the share's
    /// superblocks (and those of what is mounted in it), matched in every mount namespace.
    pub devs: Vec<(u32, u32)>,
    /// The root's mount point (exact bytes), for blocked system calls.
    pub path: PathBuf,
    /// Every mount id of the table (not the share's too): a descriptor on a mount none of the
    /// tables lists (a detached copy) is looked at by device.
    pub known: Vec<u32>,
    /// The tree's mounts, to recognise their copies in other namespaces.
    pub tree: Vec<MountEntry>,
}

/// The peer groups a mount belongs to or receives from (`shared:N`, `master:N`).
fn groups(e: &MountEntry) -> impl Iterator<Item = &str> {
    e.optional.iter().filter_map(|o| {
        o.strip_prefix("shared:")
            .or_else(|| o.strip_prefix("master:"))
    })
}

impl Target {
    /// Is `e`, a mount of another namespace, a copy of one of the tree's mounts? Yes when it is
    /// on one of the share's own devices; when its device is shared with mounts outside the
    /// tree (another mount of the same server file system), only when it is the tree mount's
    /// copy: in the tree mount's peer group or receiving from it, or at the same place with the
    /// same root (a copy taken when the namespace was made).
    fn copied(&self, e: &MountEntry) -> bool {
        let dev = (e.major, e.minor);
        if self.devs.contains(&dev) {
            return true;
        }
        self.tree.iter().any(|t| {
            (t.major, t.minor) == dev
                && ((t.path == e.path && t.root == e.root)
                    || t.optional
                        .iter()
                        .filter_map(|o| o.strip_prefix("shared:"))
                        .any(|g| groups(e).any(|h| h == g)))
        })
    }
}

impl Target {
    /// `root` and its tree as mountinfo `entries` show them.
    pub fn of(entries: &[MountEntry], root: &MountEntry) -> Target {
        let tree = mountinfo::tree(entries, root);
        let inside = |e: &MountEntry| tree.iter().any(|t| t.mount_id == e.mount_id);
        let mut devs: Vec<(u32, u32)> = tree
            .iter()
            .map(|e| (e.major, e.minor))
            .filter(|d| {
                entries
                    .iter()
                    .all(|e| (e.major, e.minor) != *d || inside(e))
            })
            .collect();
        devs.sort_unstable();
        devs.dedup();
        Target {
            ids: tree.iter().map(|e| e.mount_id).collect(),
            devs,
            path: root.path.clone(),
            known: entries.iter().map(|e| e.mount_id).collect(),
            tree: tree.into_iter().cloned().collect(),
        }
    }
}

/// What the share is to one scan: the target plus the copies found in other namespaces.
struct Marks<'a> {
    t: &'a Target,
    /// The share's mount ids in every namespace.
    ids: HashSet<u32>,
    /// Every mount id some table showed.
    known: HashSet<u32>,
}

impl Marks<'_> {
    /// Does `path` (a `/proc` link, followed) lead onto the share?
    fn holds(&self, path: &Path) -> bool {
        let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
            return false;
        };
        match sys::mount_of(&c) {
            Ok((id, dev)) => {
                id.and_then(|i| u32::try_from(i).ok())
                    .is_some_and(|i| self.ids.contains(&i))
                    || self.t.devs.contains(&dev)
            }
            Err(_) => false,
        }
    }
}

/// A process holding the share (or living in a namespace that reaches it), and how.
#[derive(Debug, Clone)]
pub struct User {
    pub pid: i32,
    /// Start time in clock ticks after boot, read before anything else.
    pub start: u64,
    pub comm: String,
    /// e.g. `cwd`, `fd 3`, `maps`.
    pub how: Vec<String>,
    /// Its mount namespace (the nsfs inode), when not this process's.
    pub ns: Option<u64>,
    /// The pinned `/proc/PID` directory.
    dir: Arc<OwnedFd>,
}

/// A mount namespace other than this process's in which the share is mounted.
#[derive(Debug)]
pub struct Namespace {
    /// Its nsfs inode (`mnt:[INO]`).
    pub ino: u64,
    /// The mounts of the share's devices there and everything mounted on or in them, as that
    /// namespace's mountinfo shows them, each copy's tree deepest first.
    pub copies: Vec<MountEntry>,
    /// The process whose mountinfo showed them.
    pub seen_by: (i32, String),
    /// Every process living in it.
    pub members: Vec<User>,
    /// A member that is never signalled (PID 1, this process or an ancestor), if any.
    pub guarded: Option<(i32, String)>,
    /// The namespace itself (`/proc/PID/ns/mnt` of a member), pinned.
    fd: OwnedFd,
}

impl Namespace {
    /// The pinned namespace, for `setns(2)`.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `mnt:[INO]`, as `/proc/PID/ns/mnt` names it.
    pub fn name(&self) -> String {
        format!("mnt:[{}]", self.ino)
    }
}

/// One look at every process of the node.
#[derive(Debug, Default)]
pub struct Scan {
    /// Processes holding the share that may be ended.
    pub users: Vec<User>,
    /// Processes holding it that are never signalled: PID 1, this process, its ancestors.
    pub kept: Vec<User>,
    /// Other mount namespaces with a copy of the share.
    pub namespaces: Vec<Namespace>,
}

/// `p` is `dir` or lies below it (bytes; a deleted file's ` (deleted)` ignored).
fn under(p: &[u8], dir: &[u8]) -> bool {
    let p = p.strip_suffix(b" (deleted)").unwrap_or(p);
    let dir = dir.strip_suffix(b"/").unwrap_or(dir);
    p == dir || (p.starts_with(dir) && p.get(dir.len()) == Some(&b'/'))
}

fn link(p: &Path) -> Option<PathBuf> {
    fs::read_link(p).ok()
}

/// The inode of a namespace link's text, `mnt:[4026531841]`.
fn ns_ino(text: &Path) -> Option<u64> {
    let t = text.to_str()?;
    t.strip_prefix("mnt:[")?.strip_suffix(']')?.parse().ok()
}

/// Does a `/proc/PID/maps` text map a file on one of `devs`?
fn maps_use(maps: &str, devs: &[(u32, u32)]) -> bool {
    let devs: Vec<String> = devs
        .iter()
        .map(|(ma, mi)| format!("{ma:02x}:{mi:02x}"))
        .collect();
    maps.lines().any(|l| {
        let mut f = l.split_whitespace();
        let (_, _, _, d, ino) = (f.next(), f.next(), f.next(), f.next(), f.next());
        ino.is_some_and(|i| i != "0") && d.is_some_and(|d| devs.iter().any(|x| x == d))
    })
}

/// Start time of the process behind `base` (a `/proc/PID` directory), if it is
/// alive and not a zombie: with the pid it names one process.
pub(crate) fn start_time_at(base: &Path) -> Option<u64> {
    let s = fs::read_to_string(base.join("stat")).ok()?;
    let rest = s.get(s.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split(' ').collect();
    if f.first() == Some(&"Z") || f.first() == Some(&"X") {
        return None;
    }
    f.get(19)?.parse().ok()
}

/// This process and its ancestors up to PID 1 (bounded: pids form no cycle,
/// and a walk cut short by a vanished parent stops there).
fn ancestors() -> HashSet<i32> {
    let mut seen = HashSet::from([1, std::process::id() as i32]);
    let mut pid = std::process::id() as i32;
    for _ in 0..4096 {
        let ppid = fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("PPid:"))
                    .and_then(|v| v.trim().parse::<i32>().ok())
            });
        match ppid {
            Some(p) if p > 1 && seen.insert(p) => pid = p,
            _ => break,
        }
    }
    seen
}

/// The `mnt_id` of an `fdinfo` text.
fn fdinfo_mount(text: &str) -> Option<u32> {
    text.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())
}

/// How the process pinned at `base` holds the share; `paths` are the share's mount points in
/// the process's own mount namespace (for blocked system calls).
fn holdings(base: &Path, m: &Marks<'_>, paths: &[PathBuf]) -> Vec<String> {
    let mut how = Vec::new();
    for what in ["cwd", "root", "exe"] {
        if m.holds(&base.join(what)) {
            how.push(what.to_string());
        }
    }
    if let Ok(fds) = fs::read_dir(base.join("fd")) {
        for fd in fds.flatten() {
            let name = fd.file_name();
            let on = match fs::read_to_string(base.join("fdinfo").join(&name))
                .ok()
                .and_then(|i| fdinfo_mount(&i))
            {
                Some(id) if m.ids.contains(&id) => true,
                // a mount some table lists and that is not the share's
                Some(id) if m.known.contains(&id) => false,
                // a detached mount, or a kernel without mnt_id: by device
                _ => m.holds(&fd.path()),
            };
            if on {
                how.push(format!("fd {}", name.to_string_lossy()));
            }
        }
    }
    if !m.t.devs.is_empty()
        && fs::read_to_string(base.join("maps")).is_ok_and(|t| maps_use(&t, &m.t.devs))
    {
        how.push("maps".to_string());
    }
    // a path system call's argument is relative to the process's root
    let root = link(&base.join("root")).unwrap_or_else(|| PathBuf::from("/"));
    let root = root.as_os_str().as_bytes();
    let root = root.strip_suffix(b"/").unwrap_or(root);
    if let Some(p) = blocked_paths(base).into_iter().find(|p| {
        let mut full = root.to_vec();
        full.extend_from_slice(p.as_os_str().as_bytes());
        paths
            .iter()
            .any(|mp| under(&full, mp.as_os_str().as_bytes()))
    }) {
        how.push(format!("blocked in a system call on {}", p.display()));
    }
    how
}

/// A process pinned by its `/proc/PID` directory.
struct Pinned {
    pid: i32,
    start: u64,
    ns: Option<u64>,
    dir: OwnedFd,
}

impl Pinned {
    fn base(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.dir.as_raw_fd()))
    }

    fn comm(&self) -> String {
        fs::read(self.base().join("comm"))
            .map(|mut b| {
                if b.last() == Some(&b'\n') {
                    b.pop();
                }
                String::from_utf8_lossy(&b).into_owned()
            })
            .unwrap_or_default()
    }
}

/// Every process of the node, pinned, with its mount namespace.
fn pin_all() -> Vec<Pinned> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut all = Vec::new();
    for ent in dir.flatten() {
        let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(fd) = open(
            &ent.path(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            continue;
        };
        let base = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        let Some(start) = start_time_at(&base) else {
            continue;
        };
        let ns = link(&base.join("ns/mnt")).and_then(|l| ns_ino(&l));
        all.push(Pinned {
            pid,
            start,
            ns,
            dir: fd,
        });
    }
    all
}

/// The copies of the share in one table: every mount on one of `devs` whose parent is not,
/// with everything mounted on or in it, each copy deepest first.
fn copies_in(entries: &[MountEntry], t: &Target) -> Vec<MountEntry> {
    let on = |e: &MountEntry| t.copied(e);
    let ids: HashSet<u32> = entries
        .iter()
        .filter(|e| on(e))
        .map(|e| e.mount_id)
        .collect();
    let mut out: Vec<MountEntry> = Vec::new();
    for top in entries
        .iter()
        .filter(|e| on(e) && !ids.contains(&e.parent_id))
    {
        for e in mountinfo::tree(entries, top) {
            if !out.iter().any(|o| o.mount_id == e.mount_id) {
                out.push(e.clone());
            }
        }
    }
    out
}

/// Reads the mount table of namespace `ino` through one of its `members`, preferring one
/// whose root is the namespace's root (a chrooted process sees only part of it), and pins
/// the namespace. `None` when every member ended meanwhile.
fn read_namespace<'a>(
    ino: u64,
    members: &[&'a Pinned],
) -> Option<(Vec<MountEntry>, &'a Pinned, OwnedFd)> {
    let rooted = |p: &&&Pinned| link(&p.base().join("root")).is_some_and(|r| r == Path::new("/"));
    let order = members
        .iter()
        .filter(rooted)
        .chain(members.iter().filter(|p| !rooted(p)));
    for p in order {
        let base = p.base();
        let Ok(raw) = fs::read(base.join("mountinfo")) else {
            continue;
        };
        let Ok(fd) = openat(
            &p.dir,
            "ns/mnt",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            continue;
        };
        // the table and the pinned namespace are this member's, and it is still this process
        let same = nix::sys::stat::fstat(&fd).is_ok_and(|st| st.st_ino == ino);
        if !same || start_time_at(&base) != Some(p.start) {
            continue;
        }
        match mountinfo::parse_bytes(&raw) {
            Ok(entries) => return Some((entries, p, fd)),
            Err(e) => log::debug!("mountinfo of {}: {e}", p.pid),
        }
    }
    None
}

/// Every process holding `t`, in every mount namespace, and the other namespaces with a copy
/// of it. PID 1, this process and its ancestors are put in [`Scan::kept`], never in
/// [`Scan::users`].
pub fn scan(t: &Target) -> Scan {
    let t0 = Instant::now();
    let skip = ancestors();
    let mine = link(Path::new("/proc/self/ns/mnt")).and_then(|l| ns_ino(&l));
    let all = pin_all();
    let mut by_ns: HashMap<u64, Vec<&Pinned>> = HashMap::new();
    for p in &all {
        if let Some(ns) = p.ns.filter(|ns| mine.is_some_and(|m| m != *ns)) {
            by_ns.entry(ns).or_default().push(p);
        }
    }
    let mut marks = Marks {
        t,
        ids: t.ids.iter().copied().collect(),
        known: t.known.iter().copied().collect(),
    };
    let mut paths: HashMap<Option<u64>, Vec<PathBuf>> =
        HashMap::from([(None, vec![t.path.clone()])]);
    let mut namespaces = Vec::new();
    for (ino, members) in &by_ns {
        let Some((entries, seen_by, fd)) = read_namespace(*ino, members) else {
            continue;
        };
        marks.known.extend(entries.iter().map(|e| e.mount_id));
        let copies = copies_in(&entries, t);
        if copies.is_empty() {
            continue;
        }
        marks.ids.extend(copies.iter().map(|e| e.mount_id));
        let tops = copies
            .iter()
            .filter(|e| !copies.iter().any(|o| o.mount_id == e.parent_id))
            .map(|e| e.path.clone())
            .collect();
        paths.insert(Some(*ino), tops);
        let guarded = members
            .iter()
            .find(|p| skip.contains(&p.pid))
            .map(|p| (p.pid, p.comm()));
        namespaces.push(Namespace {
            ino: *ino,
            copies,
            seen_by: (seen_by.pid, seen_by.comm()),
            members: Vec::new(),
            guarded,
            fd,
        });
    }
    let mut out = Scan::default();
    for p in all {
        let ns = p.ns.filter(|ns| mine.is_some_and(|m| m != *ns));
        let base = p.base();
        let how = holdings(
            &base,
            &marks,
            paths.get(&ns).map(Vec::as_slice).unwrap_or_default(),
        );
        // a zombie or a process gone meanwhile holds nothing any more
        if start_time_at(&base) != Some(p.start) {
            continue;
        }
        let member = ns.and_then(|ino| namespaces.iter_mut().find(|n| n.ino == ino));
        if how.is_empty() && member.is_none() {
            continue;
        }
        let u = User {
            pid: p.pid,
            start: p.start,
            comm: p.comm(),
            how,
            ns,
            dir: Arc::new(p.dir),
        };
        if let Some(n) = member {
            n.members.push(User {
                how: Vec::new(),
                ..u.clone()
            });
        }
        if !u.how.is_empty() {
            if skip.contains(&u.pid) {
                out.kept.push(u);
            } else {
                out.users.push(u);
            }
        }
    }
    out.namespaces = namespaces;
    log::debug!(
        "looked at every process for {} in {} ms: {} holding it, {} kept, {} other namespaces with a copy",
        t.path.display(),
        t0.elapsed().as_millis(),
        out.users.len(),
        out.kept.len(),
        out.namespaces.len()
    );
    out
}

/// [`scan`] on a thread abandoned at `until`: `None` if it did not finish.
///
/// Reading `/proc/PID/maps` or `/proc/PID/mem` waits for that process's
/// memory-map lock, which a thread of it can hold while stuck on the dead
/// mount (e.g. in a write fault on a mapped file), and `mem` may page in from
/// the mount itself. Such a wait is killable, so the thread ends with the
/// process; the caller goes on without the list (forced unmount releases the
/// stuck calls).
pub fn scan_within(t: &Target, until: Instant) -> Option<Scan> {
    let (tx, rx) = std::sync::mpsc::channel();
    let owned = t.clone();
    let spawned = std::thread::Builder::new()
        .name("find-users".into())
        .spawn(move || {
            let _ = tx.send(scan(&owned));
        });
    let mp = t.path.display();
    if let Err(e) = spawned {
        log::warn!("cannot start a thread to list the processes using {mp}: {e}");
        return None;
    }
    let found = rx
        .recv_timeout(until.saturating_duration_since(Instant::now()))
        .ok();
    if found.is_none() {
        log::warn!(
            "listing the processes using {mp} did not finish in time (a process's memory map is locked by a call stuck on the mount)"
        );
    }
    found
}

/// For x86_64 system calls taking a path: (index of the path argument,
/// index of the directory-fd argument for the `*at` forms).
#[cfg(target_arch = "x86_64")]
fn path_syscall(nr: i64) -> Option<(usize, Option<usize>)> {
    let plain = [
        libc::SYS_open,
        libc::SYS_stat,
        libc::SYS_lstat,
        libc::SYS_access,
        libc::SYS_execve,
        libc::SYS_chdir,
        libc::SYS_readlink,
        libc::SYS_mkdir,
        libc::SYS_rmdir,
        libc::SYS_unlink,
        libc::SYS_creat,
        libc::SYS_truncate,
        libc::SYS_chmod,
        libc::SYS_chown,
        libc::SYS_lchown,
        libc::SYS_statfs,
        libc::SYS_getxattr,
        libc::SYS_lgetxattr,
        libc::SYS_listxattr,
        libc::SYS_llistxattr,
        libc::SYS_rename,
        libc::SYS_link,
        libc::SYS_symlink,
        libc::SYS_utime,
        libc::SYS_utimes,
    ];
    let at = [
        libc::SYS_openat,
        libc::SYS_openat2,
        libc::SYS_newfstatat,
        libc::SYS_statx,
        libc::SYS_faccessat,
        libc::SYS_faccessat2,
        libc::SYS_readlinkat,
        libc::SYS_mkdirat,
        libc::SYS_unlinkat,
        libc::SYS_renameat,
        libc::SYS_renameat2,
        libc::SYS_fchmodat,
        libc::SYS_fchownat,
        libc::SYS_utimensat,
        libc::SYS_execveat,
        libc::SYS_name_to_handle_at,
    ];
    if plain.contains(&nr) {
        Some((0, None))
    } else if at.contains(&nr) {
        Some((1, Some(0)))
    } else {
        None
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn path_syscall(_nr: i64) -> Option<(usize, Option<usize>)> {
    None
}

/// Read a NUL-terminated string at `addr` in the process's memory (bytes).
fn read_c_string(base: &Path, addr: u64) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let f = fs::File::open(base.join("mem")).ok()?;
    let mut buf = vec![0u8; 4096];
    let n = f.read_at(&mut buf, addr).ok()?;
    let end = buf[..n].iter().position(|b| *b == 0)?;
    buf.truncate(end);
    Some(buf)
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

/// The absolute path a thread (`task`, a `/proc/PID/task/TID` directory) of
/// the process at `base` is blocked on, if it sits in a path system call.
fn blocked_path(base: &Path, task: &Path) -> Option<PathBuf> {
    let text = fs::read_to_string(task.join("syscall")).ok()?;
    let f: Vec<&str> = text.split_whitespace().collect();
    let nr: i64 = f.first()?.parse().ok()?;
    let (pi, di) = path_syscall(nr)?;
    // all six or none: a skipped field would shift the argument indexes
    let args = f
        .get(1..7)?
        .iter()
        .map(|a| hex(a))
        .collect::<Option<Vec<u64>>>()?;
    let path = read_c_string(base, *args.get(pi)?)?;
    if path.starts_with(b"/") {
        return Some(PathBuf::from(OsString::from_vec(path)));
    }
    let dir = match di.map(|i| args.get(i).copied()) {
        Some(Some(d)) if d as i32 != libc::AT_FDCWD => {
            link(&task.join("fd").join((d as i32).to_string()))?
        }
        Some(None) => return None,
        _ => link(&task.join("cwd"))?,
    };
    Some(dir.join(OsString::from_vec(path)))
}

/// The paths any thread of the process at `base` is blocked on.
fn blocked_paths(base: &Path) -> Vec<PathBuf> {
    match fs::read_dir(base.join("task")) {
        Ok(tasks) => tasks
            .flatten()
            .filter_map(|t| blocked_path(base, &t.path()))
            .collect(),
        // no task directory (kernel without it, or the process just ended)
        Err(_) => blocked_path(base, base).into_iter().collect(),
    }
}

impl User {
    /// The pinned `/proc/PID` directory as a path.
    fn base(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.dir.as_raw_fd()))
    }

    /// Still this process, alive and not a zombie (a zombie holds no files).
    fn alive(&self) -> bool {
        start_time_at(&self.base()) == Some(self.start)
    }

    fn signal(&self, sig: Signal) {
        if !self.alive() {
            return;
        }
        log::debug!(
            "sending {sig} to {} ({}) using {:?}",
            self.pid,
            self.comm,
            self.how
        );
        let r = match sys::pidfd_send_signal(self.dir.as_fd(), sig as libc::c_int) {
            // before Linux 5.1: by pid, just checked to be this process
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                kill(Pid::from_raw(self.pid), sig).map_err(std::io::Error::from)
            }
            r => r,
        };
        if let Err(e) = r
            && e.raw_os_error() != Some(libc::ESRCH)
        {
            log::debug!("{sig} {}: {e}", self.pid);
        }
    }
}

/// One line naming the holders: `PID (command: what)`, joined by commas.
/// One line naming processes: `PID (command: what)`, with the mount namespace when not ours,
/// joined by semicolons.
pub fn describe(users: &[User]) -> String {
    users
        .iter()
        .map(|u| {
            let mut what = u.how.clone();
            if let Some(ns) = u.ns {
                what.push(format!("in mount namespace mnt:[{ns}]"));
            }
            if what.is_empty() {
                format!("{} ({})", u.pid, u.comm)
            } else {
                format!("{} ({}: {})", u.pid, u.comm, what.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn wait_gone<'a>(users: &[&'a User], until: Instant) -> Vec<&'a User> {
    loop {
        let left: Vec<&User> = users.iter().copied().filter(|u| u.alive()).collect();
        if left.is_empty() || Instant::now() >= until {
            return left;
        }
        sleep(Duration::from_millis(20));
    }
}

/// SIGTERM the users, wait up to `grace`, SIGKILL the rest, wait until
/// `deadline`. Returns the pids still alive at the end.
pub fn terminate(users: &[User], grace: Duration, deadline: Instant) -> Vec<i32> {
    for u in users {
        u.signal(Signal::SIGTERM);
    }
    let all: Vec<&User> = users.iter().collect();
    let left = wait_gone(&all, (Instant::now() + grace).min(deadline));
    if left.is_empty() {
        return Vec::new();
    }
    for u in &left {
        u.signal(Signal::SIGKILL);
    }
    wait_gone(&left, deadline).iter().map(|u| u.pid).collect()
}

#[cfg(test)]
mod tests;
