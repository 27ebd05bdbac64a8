//! Files a hook trusts, opened so that nobody but root can steer what is read or written.
//!
//! Hooks run as root; a configuration file, `node.key` or a run-state file that another user
//! can replace (or point elsewhere with a symbolic link) would let that user steer them. So a
//! path is opened one directory at a time from `/` (`openat` with `O_NOFOLLOW` on the
//! descriptor of the directory above, never by name again), and every directory and the file
//! itself are checked with `fstat` on the open descriptor:
//!
//! - not a symbolic link (any component);
//! - owned by root — or, when not running as root (tests, an admin's dry run), by root or the
//!   current user;
//! - not writable by group or others. The one exception is a **root-owned sticky directory
//!   above** the one that holds the file (`/tmp` in tests): in it nobody else can rename or
//!   remove root's entries, and the next component is itself checked. The directory that holds
//!   the file never gets that exception: in a `1777` configuration directory anyone could add
//!   `<TAG>.conf` or `node.key`.
//!
//! Refusals are [`Failure::usage`] (exit 2) and say what to run to fix them.
//! Files are written atomically (a temporary file in the same directory, `fsync`, `rename`)
//! with fixed modes, whatever the umask.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat, readlinkat, renameat};
use nix::sys::stat::{FileStat, Mode, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, linkat, unlinkat};

use crate::exit::Failure;

/// The largest file [`Dir::read`] reads; configuration and state files are far smaller.
pub const MAX_FILE_LEN: u64 = 1 << 20;

/// The uid that may own what a hook trusts besides root: none when running as root.
fn other_trusted_uid() -> Option<u32> {
    let me = nix::unistd::geteuid();
    (!me.is_root()).then_some(me.as_raw())
}

fn owner_ok(uid: u32) -> bool {
    uid == 0 || Some(uid) == other_trusted_uid()
}

fn owner_problem(path: &Path, uid: u32) -> Failure {
    let who = match other_trusted_uid() {
        None => "root".to_owned(),
        Some(me) => format!("root or uid {me} (the user running this)"),
    };
    Failure::usage(format!(
        "{}: owned by uid {uid}, not {who}: a file a hook trusts must be root's; run `chown root: {}`",
        path.display(),
        path.display()
    ))
}

/// What a directory's mode should become to be safe: group and others lose write (and sticky).
fn safe_dir_mode(mode: u32) -> u32 {
    mode & 0o755
}

/// A directory opened through [`Dir::open`], every component checked.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

fn errno_failure(path: &Path, what: &str, e: Errno) -> Failure {
    match e {
        Errno::ELOOP => Failure::usage(format!(
            "{}: is a symbolic link, which lkhelpers never follows here (hooks run as root): replace it with the real directory or file, or point the setting at the real path",
            path.display()
        )),
        Errno::ENOTDIR => Failure::usage(format!(
            "{}: is not a directory: remove it or point the setting elsewhere",
            path.display()
        )),
        _ => Failure::failed(format!(
            "{}: cannot {what}: {}: check that it is accessible to root",
            path.display(),
            e.desc()
        )),
    }
}

/// Checks an open directory: owned by root (or us), not writable by group or others unless it
/// is a root-owned sticky directory above the last one (`last` false).
fn check_dir(fd: &OwnedFd, path: &Path, last: bool) -> Result<(), Failure> {
    let m = nix::sys::stat::fstat(fd).map_err(|e| errno_failure(path, "inspect", e))?;
    let mode = m.st_mode;
    if mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(errno_failure(path, "open", Errno::ENOTDIR));
    }
    if !owner_ok(m.st_uid) {
        return Err(owner_problem(path, m.st_uid));
    }
    let sticky_root = mode & libc::S_ISVTX != 0 && m.st_uid == 0;
    if mode & 0o022 != 0 && (last || !sticky_root) {
        return Err(Failure::usage(format!(
            "{}: writable by group or others (mode {:04o}), so another user could put files a hook trusts in it: run `chmod {:04o} {}`",
            path.display(),
            mode & 0o7777,
            safe_dir_mode(mode & 0o7777),
            path.display()
        )));
    }
    Ok(())
}

/// The absolute form of `path`, with `.` dropped; `..` is refused (it would climb out of a
/// directory already checked).
fn absolute(path: &Path) -> Result<PathBuf, Failure> {
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Failure::failed(format!("cannot find the current directory: {e}")))?
            .join(path)
    };
    if full.components().any(|c| c == Component::ParentDir) {
        return Err(Failure::usage(format!(
            "{}: contains '..': write the path without it",
            path.display()
        )));
    }
    Ok(full.components().collect())
}

fn nofollow_dir() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// A file name for [`Dir`]'s methods: one component, not `.`/`..`, no `/`.
fn check_name(name: &OsStr) -> Result<(), Failure> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
        return Err(Failure::usage(format!(
            "{:?} is not a file name (internal error: please report it)",
            name
        )));
    }
    Ok(())
}

impl Dir {
    /// Opens directory `path`, checking every component from `/`. `create`: the mode for
    /// missing components, which are made (owned by whoever runs this, mode exactly that);
    /// without it a missing component gives `Ok(None)`.
    pub fn open(path: &Path, create: Option<u32>) -> Result<Option<Dir>, Failure> {
        let full = absolute(path)?;
        let root = Path::new("/");
        let fd = openat(AT_FDCWD, root, nofollow_dir(), Mode::empty())
            .map_err(|e| errno_failure(root, "open", e))?;
        let parts: Vec<&OsStr> = full
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        check_dir(&fd, root, parts.is_empty())?;
        let mut dir = Dir {
            fd,
            path: root.to_path_buf(),
        };
        for (i, part) in parts.iter().enumerate() {
            match dir.subdir(part, create, i + 1 == parts.len())? {
                Some(d) => dir = d,
                None => return Ok(None),
            }
        }
        Ok(Some(dir))
    }

    /// The directory `name` inside this one, checked (`last`: it holds trusted files itself, so
    /// no sticky exception); made with mode `create` if missing and `create` is given.
    pub fn subdir(
        &self,
        name: &OsStr,
        create: Option<u32>,
        last: bool,
    ) -> Result<Option<Dir>, Failure> {
        check_name(name)?;
        let path = self.path.join(name);
        let fd = match openat(&self.fd, name, nofollow_dir(), Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                let Some(mode) = create else {
                    return Ok(None);
                };
                match mkdirat(&self.fd, name, Mode::from_bits_truncate(mode)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(errno_failure(&path, "create", e)),
                }
                let fd = openat(&self.fd, name, nofollow_dir(), Mode::empty())
                    .map_err(|e| errno_failure(&path, "open", e))?;
                // the umask may have taken bits away; we made it, so set exactly `mode`
                let m =
                    nix::sys::stat::fstat(&fd).map_err(|e| errno_failure(&path, "inspect", e))?;
                if owner_ok(m.st_uid) && m.st_mode & 0o7777 != mode {
                    fchmod(&fd, Mode::from_bits_truncate(mode))
                        .map_err(|e| errno_failure(&path, "set the mode of", e))?;
                }
                fd
            }
            Err(Errno::ENOTDIR) => {
                // O_NOFOLLOW with O_DIRECTORY answers ENOTDIR for a link: say which it is
                let link = nix::sys::stat::fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .is_ok_and(|m| m.st_mode & libc::S_IFMT == libc::S_IFLNK);
                let e = if link { Errno::ELOOP } else { Errno::ENOTDIR };
                return Err(errno_failure(&path, "open", e));
            }
            Err(e) => return Err(errno_failure(&path, "open", e)),
        };
        check_dir(&fd, &path, last)?;
        Ok(Some(Dir { fd, path }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens file `name` without following a link and checks it on its descriptor: a regular
    /// file, owned by root (or us), not writable by group or others. `Ok(None)` if missing.
    fn open_file(&self, name: &OsStr, flags: OFlag, mode: u32) -> Result<Option<File>, Failure> {
        check_name(name)?;
        let path = self.path.join(name);
        // O_NONBLOCK: a FIFO put in the file's place must not hang the open
        let flags =
            flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
        let fd = match openat(&self.fd, name, flags, Mode::from_bits_truncate(mode)) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => {
                return Err(Failure::usage(format!(
                    "{}: is a symbolic link, which lkhelpers never follows (hooks run as root): replace it with the file itself",
                    path.display()
                )));
            }
            Err(e) => return Err(errno_failure(&path, "open", e)),
        };
        let file = File::from(fd);
        let m = file
            .metadata()
            .map_err(|e| Failure::failed(format!("{}: cannot inspect: {e}", path.display())))?;
        if !m.file_type().is_file() {
            return Err(Failure::usage(format!(
                "{}: not a regular file: replace it with a plain file",
                path.display()
            )));
        }
        if !owner_ok(m.uid()) {
            return Err(owner_problem(&path, m.uid()));
        }
        if m.mode() & 0o022 != 0 {
            return Err(Failure::usage(format!(
                "{}: writable by group or others (mode {:04o}): run `chmod go-w {}`",
                path.display(),
                m.mode() & 0o7777,
                path.display()
            )));
        }
        Ok(Some(file))
    }

    /// The contents of file `name` (checked as [`Dir::open_file`] says), `Ok(None)` if missing.
    pub fn read(&self, name: &OsStr) -> Result<Option<Vec<u8>>, Failure> {
        let Some(file) = self.open_file(name, OFlag::O_RDONLY, 0)? else {
            return Ok(None);
        };
        let path = self.path.join(name);
        let mut buf = Vec::new();
        file.take(MAX_FILE_LEN + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Failure::failed(format!("{}: cannot read: {e}", path.display())))?;
        if buf.len() as u64 > MAX_FILE_LEN {
            return Err(Failure::usage(format!(
                "{}: larger than {MAX_FILE_LEN} bytes: this is not a file lkhelpers wrote or expects",
                path.display()
            )));
        }
        Ok(Some(buf))
    }

    /// Opens file `name` for reading, checked as [`Dir::open_file`] says; `Ok(None)` if missing.
    pub fn open_existing(&self, name: &OsStr) -> Result<Option<File>, Failure> {
        self.open_file(name, OFlag::O_RDONLY, 0)
    }

    /// Opens (creating with `mode`) file `name` for reading and writing, checked; for locks.
    pub fn open_rw(&self, name: &OsStr, mode: u32) -> Result<File, Failure> {
        let f = self
            .open_file(name, OFlag::O_RDWR | OFlag::O_CREAT, mode)?
            .ok_or_else(|| {
                Failure::failed(format!(
                    "{}: vanished while being opened",
                    self.path.join(name).display()
                ))
            })?;
        Ok(f)
    }

    /// Writes `data` to a new temporary file in this directory with exactly `mode`, synced.
    fn temp(&self, name: &OsStr, data: &[u8], mode: u32) -> Result<OsString, Failure> {
        check_name(name)?;
        let mut tmp = OsString::from(".");
        tmp.push(name);
        tmp.push(format!(".tmp{}", std::process::id()));
        let tpath = self.path.join(&tmp);
        let io =
            |e: std::io::Error| Failure::failed(format!("{}: cannot write: {e}", tpath.display()));
        // a leftover from a killed run of ours (same pid after a reboot is impossible: /run)
        let _ = unlinkat(&self.fd, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
        let fd = openat(
            &self.fd,
            tmp.as_os_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        )
        .map_err(|e| errno_failure(&tpath, "create", e))?;
        let result = (|| {
            fchmod(&fd, Mode::from_bits_truncate(mode))
                .map_err(|e| errno_failure(&tpath, "set the mode of", e))?;
            let mut f = File::from(fd);
            f.write_all(data).map_err(io)?;
            f.sync_all().map_err(io)
        })();
        match result {
            Ok(()) => Ok(tmp),
            Err(f) => {
                let _ = unlinkat(&self.fd, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
                Err(f)
            }
        }
    }

    /// Replaces file `name` atomically with `data`, mode exactly `mode`: readers see the old or
    /// the new contents, never a part. A link or directory in its place is replaced, not followed.
    pub fn write_atomic(&self, name: &OsStr, data: &[u8], mode: u32) -> Result<(), Failure> {
        let tmp = self.temp(name, data, mode)?;
        let path = self.path.join(name);
        renameat(&self.fd, tmp.as_os_str(), &self.fd, name).map_err(|e| {
            let _ = unlinkat(&self.fd, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
            errno_failure(&path, "replace", e)
        })?;
        self.sync();
        Ok(())
    }

    /// Creates file `name` with `data` unless it exists: `Ok(false)` when another writer was
    /// first (its contents are kept). The file appears whole or not at all.
    pub fn create_new(&self, name: &OsStr, data: &[u8], mode: u32) -> Result<bool, Failure> {
        let tmp = self.temp(name, data, mode)?;
        let r = linkat(&self.fd, tmp.as_os_str(), &self.fd, name, AtFlags::empty());
        let _ = unlinkat(&self.fd, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
        match r {
            Ok(()) => {
                self.sync();
                Ok(true)
            }
            Err(Errno::EEXIST) => Ok(false),
            Err(e) => Err(errno_failure(&self.path.join(name), "create", e)),
        }
    }

    /// Removes file `name`; `Ok(false)` if it was not there.
    pub fn remove(&self, name: &OsStr) -> Result<bool, Failure> {
        check_name(name)?;
        match unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(errno_failure(&self.path.join(name), "remove", e)),
        }
    }

    /// The names in this directory, sorted. Listed by path: whatever a caller then opens of
    /// them is opened through this checked descriptor again.
    pub fn entries(&self) -> Result<Vec<OsString>, Failure> {
        let mut names: Vec<OsString> = std::fs::read_dir(&self.path)
            .map_err(|e| Failure::failed(format!("{}: cannot list: {e}", self.path.display())))?
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        names.sort();
        Ok(names)
    }

    /// What is at `name` in this directory, looked at without following a link and without
    /// opening anything but a regular file (a device or FIFO put there is never opened), and
    /// without judging its owner or mode: for a writer that replaces the file unless it is
    /// exactly right. At most `max` bytes are read ([`Entry::File`]'s `whole` says if that was all).
    pub fn peek(&self, name: &OsStr, max: u64) -> Result<Entry, Failure> {
        check_name(name)?;
        let path = self.path.join(name);
        let st = match fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(Entry::Missing),
            Err(e) => return Err(errno_failure(&path, "inspect", e)),
        };
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Ok(Entry::Other);
        }
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC
            | OFlag::O_NOCTTY
            | OFlag::O_NONBLOCK;
        let fd = match openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(Entry::Missing),
            Err(Errno::ELOOP) => return Ok(Entry::Other),
            Err(e) => return Err(errno_failure(&path, "open", e)),
        };
        let now = fstat(&fd).map_err(|e| errno_failure(&path, "inspect", e))?;
        if now.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Ok(Entry::Other);
        }
        let mut data = Vec::new();
        File::from(fd)
            .take(max + 1)
            .read_to_end(&mut data)
            .map_err(|e| Failure::failed(format!("{}: cannot read: {e}", path.display())))?;
        let whole = data.len() as u64 <= max;
        data.truncate(max as usize);
        Ok(Entry::File {
            data,
            whole,
            uid: now.st_uid,
            mode: now.st_mode & 0o7777,
        })
    }

    /// Makes renames and links in this directory durable; a failure only costs durability.
    fn sync(&self) {
        let _ = nix::unistd::fsync(self.fd.as_fd());
    }
}

/// Reads the trusted file `path` (every directory above it and the file checked), `Ok(None)`
/// when it or a directory above it does not exist.
pub fn read_file(path: &Path) -> Result<Option<Vec<u8>>, Failure> {
    let (dir, name) = split(path)?;
    match Dir::open(dir, None)? {
        Some(d) => d.read(name),
        None => Ok(None),
    }
}

/// The directory and file name of a file path.
pub fn split(path: &Path) -> Result<(&Path, &OsStr), Failure> {
    match (path.parent(), path.file_name()) {
        (Some(d), Some(n)) => Ok((
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            },
            n,
        )),
        _ => Err(Failure::usage(format!(
            "{}: not a file path: name a file",
            path.display()
        ))),
    }
}

/// What [`Dir::peek`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Missing,
    /// A link, directory, device, FIFO or socket: not opened.
    Other,
    /// A regular file: its first bytes, whether that was all of it, its owner and mode bits.
    File {
        data: Vec<u8>,
        whole: bool,
        uid: u32,
        mode: u32,
    },
}

/// What [`judge`] expects at the end of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    File,
    Dir,
}

/// One component of a judged path that someone other than root could change: the directory,
/// link or file to fix, what is wrong with it and the command that fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flaw {
    pub path: PathBuf,
    pub what: String,
    pub fix: String,
    /// On the file or directory the path leads to itself, not on the way to it.
    pub target: bool,
}

/// A path judged by [`judge`]: its target opened, and every flaw on the way.
#[derive(Debug)]
pub struct Judged {
    /// The target, opened read-only (never through a link that was not judged). A program run
    /// from this descriptor is the file that was judged, whatever happens to its path.
    pub file: File,
    pub meta: std::fs::Metadata,
    /// The path with every symbolic link replaced by what it points to.
    pub real: PathBuf,
    /// The links followed, each with what it points to.
    pub links: Vec<(PathBuf, OsString)>,
    /// Empty when nobody but root (or the user running this, when not root) can change what
    /// the path leads to.
    pub flaws: Vec<Flaw>,
}

/// Why [`judge`] did not reach the end of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreached {
    /// The component where the walk stopped.
    pub path: PathBuf,
    /// That component does not exist.
    pub missing: bool,
    pub what: String,
    /// The flaws found before it.
    pub flaws: Vec<Flaw>,
}

/// Links followed before a path is declared a loop (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// Who may own what root runs: "root", or "root or uid N (…)" when not running as root.
fn trusted_owners() -> String {
    match other_trusted_uid() {
        None => "root".to_owned(),
        Some(me) => format!("root or uid {me} (the user running this)"),
    }
}

/// Adds the flaws of the directory `st` at `at`. True when it is writable by others but
/// root's and sticky: fine on the way, a flaw if it holds the target.
fn dir_flaws(st: &FileStat, at: &Path, flaws: &mut Vec<Flaw>) -> bool {
    if !owner_ok(st.st_uid) {
        flaws.push(Flaw {
            path: at.to_path_buf(),
            what: format!("owned by uid {}, not {}", st.st_uid, trusted_owners()),
            fix: format!("chown root: {}", at.display()),
            target: false,
        });
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o022 == 0 {
        return false;
    }
    if mode & libc::S_ISVTX != 0 && st.st_uid == 0 {
        return true;
    }
    flaws.push(Flaw {
        path: at.to_path_buf(),
        what: format!("writable by group or others (mode {mode:04o})"),
        fix: format!("chmod {:04o} {}", safe_dir_mode(mode), at.display()),
        target: false,
    });
    false
}

/// The components of `path` after its root: names and `..` (`.` dropped).
fn components(path: &Path) -> std::collections::VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// [`judge`]'s state: the directories from `/` to where the walk is (each with "writable,
/// but root's and sticky"), the links followed and the flaws found.
struct Walk {
    stack: Vec<(OwnedFd, PathBuf, bool)>,
    links: Vec<(PathBuf, OsString)>,
    flaws: Vec<Flaw>,
}

impl Walk {
    fn stop(&mut self, at: &Path, missing: bool, what: String) -> Unreached {
        Unreached {
            path: at.to_path_buf(),
            missing,
            what,
            flaws: std::mem::take(&mut self.flaws),
        }
    }

    fn enter(&mut self, fd: OwnedFd, st: &FileStat, at: PathBuf) {
        let sticky = dir_flaws(st, &at, &mut self.flaws);
        self.stack.push((fd, at, sticky));
    }

    /// The flaws of the target `real` marked as such; a sticky directory holding it (or being
    /// it) is one.
    fn done(mut self, file: File, real: PathBuf, holder_sticky: bool) -> Result<Judged, Unreached> {
        if holder_sticky {
            let (at, mode) = match self.stack.last() {
                Some((fd, at, _)) => (at.clone(), fstat(fd).map_or(0, |s| s.st_mode & 0o7777)),
                None => (real.clone(), 0),
            };
            self.flaws.push(Flaw {
                fix: format!("chmod {:04o} {}", safe_dir_mode(mode), at.display()),
                what: format!(
                    "writable by others (mode {mode:04o}): the sticky bit does not stop them adding files to it"
                ),
                path: at,
                target: false,
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        self.flaws
            .retain(|f| seen.insert((f.path.clone(), f.what.clone())));
        for f in &mut self.flaws {
            f.target = f.path == real;
        }
        let meta = file
            .metadata()
            .map_err(|e| self.stop(&real, false, format!("cannot inspect: {e}")))?;
        Ok(Judged {
            file,
            meta,
            real,
            links: self.links,
            flaws: self.flaws,
        })
    }
}

/// Judges `path` the way the kernel resolves it, one component at a time from `/` (`openat`
/// with `O_PATH|O_NOFOLLOW` on the directory above, `fstat` on the descriptor): every
/// directory must be owned by root (or the user running this, when not root) and not writable
/// by group or others — a root-owned sticky directory passes on the way, never as the one that
/// holds the target or is it —, and so must the target. A **symbolic link** is followed (its
/// `..` physically, as the kernel does) and must be owned by root: a link cannot be changed,
/// only replaced by whoever may write its directory, which is judged too. So `/bin -> usr/bin`
/// and `/usr/bin/sh -> dash` of a usrmerge system pass, while a link a user owns, or one in a
/// directory a user can write, is a flaw. The walk goes on past a flaw, so every component to
/// fix is named at once; it stops only where the path cannot be followed (a missing component,
/// a file on the way, a loop, a target of the wrong kind).
pub fn judge(path: &Path, want: Want) -> Result<Judged, Unreached> {
    let mut w = Walk {
        stack: Vec::new(),
        links: Vec::new(),
        flaws: Vec::new(),
    };
    let start = if path.is_absolute() {
        path.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(d) => d.join(path),
            Err(e) => {
                return Err(w.stop(
                    path,
                    false,
                    format!("cannot find the current directory: {e}"),
                ));
            }
        }
    };
    let root = Path::new("/");
    let path_flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let opened = openat(
        AT_FDCWD,
        root,
        path_flags | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
    .and_then(|fd| fstat(&fd).map(|st| (fd, st)));
    match opened {
        Ok((fd, st)) => w.enter(fd, &st, root.to_path_buf()),
        Err(e) => return Err(w.stop(root, false, format!("cannot open: {}", e.desc()))),
    }
    let mut todo = components(&start);
    while let Some(part) = todo.pop_front() {
        if part == ".." {
            if w.stack.len() > 1 {
                w.stack.pop();
            }
            continue;
        }
        let Some((dir, dir_path, dir_sticky)) = w.stack.last() else {
            break;
        };
        let (dir_sticky, at) = (*dir_sticky, dir_path.join(&part));
        let (fd, st) = match openat(dir, part.as_os_str(), path_flags, Mode::empty())
            .and_then(|fd| fstat(&fd).map(|st| (fd, st)))
        {
            Ok(x) => x,
            Err(Errno::ENOENT) => return Err(w.stop(&at, true, "does not exist".into())),
            Err(e) => return Err(w.stop(&at, false, format!("cannot open: {}", e.desc()))),
        };
        match st.st_mode & libc::S_IFMT {
            libc::S_IFLNK => {
                if w.links.len() == MAX_LINKS {
                    return Err(w.stop(
                        &at,
                        false,
                        format!("more than {MAX_LINKS} symbolic links on the way (a loop?)"),
                    ));
                }
                if !owner_ok(st.st_uid) {
                    w.flaws.push(Flaw {
                        path: at.clone(),
                        what: format!(
                            "a symbolic link owned by uid {}, not {}",
                            st.st_uid,
                            trusted_owners()
                        ),
                        fix: format!("chown -h root: {}", at.display()),
                        target: false,
                    });
                }
                // the link that was judged, read through its own descriptor
                let to = match readlinkat(&fd, "") {
                    Ok(to) if !to.is_empty() => to,
                    Ok(_) => return Err(w.stop(&at, false, "is an empty symbolic link".into())),
                    Err(e) => {
                        let what = format!("cannot read the symbolic link: {}", e.desc());
                        return Err(w.stop(&at, false, what));
                    }
                };
                if Path::new(&to).is_absolute() {
                    w.stack.truncate(1);
                }
                let mut next = components(Path::new(&to));
                next.extend(todo);
                todo = next;
                w.links.push((at, to));
            }
            libc::S_IFDIR => w.enter(fd, &st, at),
            _ if !todo.is_empty() => return Err(w.stop(&at, false, "is not a directory".into())),
            kind => {
                if want == Want::Dir {
                    return Err(w.stop(&at, false, "is not a directory".into()));
                }
                if kind != libc::S_IFREG {
                    return Err(w.stop(&at, false, "is not a regular file".into()));
                }
                if !owner_ok(st.st_uid) {
                    w.flaws.push(Flaw {
                        path: at.clone(),
                        what: format!("owned by uid {}, not {}", st.st_uid, trusted_owners()),
                        fix: format!("chown root: {}", at.display()),
                        target: true,
                    });
                }
                let mode = st.st_mode & 0o7777;
                if mode & 0o022 != 0 {
                    w.flaws.push(Flaw {
                        path: at.clone(),
                        what: format!("writable by group or others (mode {mode:04o})"),
                        fix: format!("chmod go-w {}", at.display()),
                        target: true,
                    });
                }
                let Some((dir, _, _)) = w.stack.last() else {
                    break;
                };
                let flags = OFlag::O_RDONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC
                    | OFlag::O_NOCTTY
                    | OFlag::O_NONBLOCK;
                let file = match openat(dir, part.as_os_str(), flags, Mode::empty())
                    .and_then(|fd| fstat(&fd).map(|now| (fd, now)))
                {
                    Ok((fd, now)) if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino) => {
                        File::from(fd)
                    }
                    Ok(_) => return Err(w.stop(&at, false, "changed while being judged".into())),
                    Err(e) => return Err(w.stop(&at, false, format!("cannot open: {}", e.desc()))),
                };
                return w.done(file, at, dir_sticky);
            }
        }
    }
    let Some((dir, at, sticky)) = w.stack.last() else {
        return Err(w.stop(Path::new("/"), false, "cannot open".into()));
    };
    let at = at.clone();
    if want == Want::File {
        return Err(w.stop(&at, false, "is a directory, not a file".into()));
    }
    let sticky = *sticky;
    match openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => w.done(File::from(fd), at, sticky),
        Err(e) => Err(w.stop(&at, false, format!("cannot open: {}", e.desc()))),
    }
}

#[cfg(test)]
mod tests;
