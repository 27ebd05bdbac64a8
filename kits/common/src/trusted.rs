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
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{Mode, fchmod, mkdirat};
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Exit;
    use std::os::unix::fs::PermissionsExt;

    struct Tmp(PathBuf);
    impl Tmp {
        fn new(name: &str) -> Tmp {
            let d = std::env::temp_dir().join(format!("lkh-trusted-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
            Tmp(d)
        }
    }
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn reads_checked_files_and_refuses_links_writable_and_foreign_ones() {
        let t = Tmp::new("read");
        let f = t.0.join("a.conf");
        std::fs::write(&f, b"X=1\n").unwrap();
        chmod(&f, 0o644);
        assert_eq!(read_file(&f).unwrap().as_deref(), Some(&b"X=1\n"[..]));
        assert_eq!(read_file(&t.0.join("missing")).unwrap(), None);
        assert_eq!(read_file(&t.0.join("no/such/dir/x")).unwrap(), None);

        let link = t.0.join("link.conf");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        let e = read_file(&link).unwrap_err();
        assert_eq!(e.exit, Exit::Usage);
        assert!(e.message.contains("symbolic link"), "{e}");

        chmod(&f, 0o664);
        let e = read_file(&f).unwrap_err();
        assert!(e.message.contains("chmod go-w"), "{e}");
        chmod(&f, 0o644);

        for mode in [0o777, 0o1777, 0o775] {
            chmod(&t.0, mode);
            let e = read_file(&f).unwrap_err();
            assert_eq!(e.exit, Exit::Usage, "{mode:o}");
            assert!(e.message.contains("writable by group or others"), "{e}");
            assert!(
                e.message.contains(&format!("chmod {:04o} ", mode & 0o755)),
                "{e}"
            );
        }
        chmod(&t.0, 0o755);

        // a link among the directories above is refused too
        let dlink = t.0.join("dlink");
        std::os::unix::fs::symlink(&t.0, &dlink).unwrap();
        let e = read_file(&dlink.join("a.conf")).unwrap_err();
        assert!(e.message.contains("symbolic link"), "{e}");

        std::fs::create_dir(t.0.join("d.conf")).unwrap();
        let e = read_file(&t.0.join("d.conf")).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{e}");

        let fifo = t.0.join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let e = read_file(&fifo).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{e}");

        if nix::unistd::geteuid().is_root() {
            nix::unistd::chown(&f, Some(nix::unistd::Uid::from_raw(4321)), None).unwrap();
            let e = read_file(&f).unwrap_err();
            assert!(e.message.contains("owned by uid 4321"), "{e}");
            nix::unistd::chown(&f, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
            nix::unistd::chown(&t.0, Some(nix::unistd::Uid::from_raw(4321)), None).unwrap();
            let e = read_file(&f).unwrap_err();
            assert!(e.message.contains("owned by uid 4321"), "{e}");
        }
    }

    #[test]
    fn creates_directories_with_exact_modes_and_writes_atomically() {
        let t = Tmp::new("write");
        let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o077));
        let d = Dir::open(&t.0.join("a/b"), Some(0o700)).unwrap().unwrap();
        nix::sys::stat::umask(old);
        for p in [t.0.join("a"), t.0.join("a/b")] {
            let m = std::fs::symlink_metadata(&p).unwrap();
            assert_eq!(m.mode() & 0o7777, 0o700, "{}", p.display());
        }
        d.write_atomic(OsStr::new("v"), b"one", 0o600).unwrap();
        d.write_atomic(OsStr::new("v"), b"two", 0o600).unwrap();
        assert_eq!(d.read(OsStr::new("v")).unwrap().unwrap(), b"two");
        let m = std::fs::symlink_metadata(t.0.join("a/b/v")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o600);
        assert_eq!(
            d.entries().unwrap(),
            [OsString::from("v")],
            "no temporary left"
        );

        // a link planted in a file's place is replaced, never written through
        let victim = t.0.join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, t.0.join("a/b/w")).unwrap();
        d.write_atomic(OsStr::new("w"), b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(
            std::fs::symlink_metadata(t.0.join("a/b/w"))
                .unwrap()
                .is_file()
        );

        assert!(d.create_new(OsStr::new("k"), b"first", 0o600).unwrap());
        assert!(!d.create_new(OsStr::new("k"), b"second", 0o600).unwrap());
        assert_eq!(d.read(OsStr::new("k")).unwrap().unwrap(), b"first");
        assert!(d.remove(OsStr::new("k")).unwrap());
        assert!(!d.remove(OsStr::new("k")).unwrap());

        // a pre-created group-writable directory is refused, not used
        std::fs::create_dir(t.0.join("a/open")).unwrap();
        chmod(&t.0.join("a/open"), 0o770);
        let e = Dir::open(&t.0.join("a/open/x"), Some(0o700)).unwrap_err();
        assert!(e.message.contains("writable by group or others"), "{e}");
        assert!(!t.0.join("a/open/x").exists());
        assert!(Dir::open(&t.0.join("a/../a"), None).is_err());
    }
}
