//! Runtime state of the kits, one layout for all: `<run dir>/<kit>/<TAG>/<name>`.
//!
//! `<run dir>` is [`crate::config::run_dir`] (`$LKHELPERS_RUN_DIR`, `/run/lkhelpers`: a tmpfs,
//! so the state vanishes at reboot together with what it describes). Every directory is
//! created mode 0700 and every component is checked as [`crate::trusted`] says (no links,
//! root's, not writable by others); files are written atomically with mode 0600 and read
//! with `O_NOFOLLOW` and `fstat` on the descriptor. One directory per tag means no tag can
//! collide with another tag's files (`x.fenced`, `.x` are tags like any other).
//!
//! `<TAG>/lock` is the per-tag lock: the hook runner holds it around every hook action of
//! the tag ([`crate::kit`]), and `lkh-scsipr watch` while it judges the tag, so hooks of one
//! tag run one at a time. It is a POSIX record lock (`fcntl(F_SETLK)`), not `flock`: a record
//! lock is not inherited by a forked child, so a child a hook abandons (lkh-nas's I/O check,
//! possibly stuck in the kernel) cannot keep the resource locked after the hook has exited.
//! Within one process a registry plays the same part (record locks never conflict inside one
//! process). The wait is bounded by the caller's deadline.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};

use crate::deadline::Deadline;
use crate::exit::Failure;
use crate::tag::Tag;
use crate::trusted::Dir;

/// Mode of every directory this layer creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file this layer writes.
pub const FILE_MODE: u32 = 0o600;
/// The lock file's name in every tag directory (not available to [`TagDir::store`]).
pub const LOCK_NAME: &str = "lock";

/// The run directory of one kit.
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
    kit: String,
}

impl RunDir {
    /// `<run dir>/<kit>` with the run directory from the environment.
    pub fn new(kit: &str) -> RunDir {
        RunDir::at(crate::config::run_dir(), kit)
    }

    /// `<root>/<kit>` (tests).
    pub fn at(root: impl Into<PathBuf>, kit: &str) -> RunDir {
        RunDir {
            root: root.into(),
            kit: kit.to_owned(),
        }
    }

    /// `<run dir>/<kit>`.
    pub fn path(&self) -> PathBuf {
        self.root.join(&self.kit)
    }

    fn kit_dir(&self, create: bool) -> Result<Option<Dir>, Failure> {
        Dir::open(&self.path(), create.then_some(DIR_MODE))
    }

    /// The directory of `tag`, created if missing.
    pub fn tag(&self, tag: &Tag) -> Result<TagDir, Failure> {
        let kit = self
            .kit_dir(true)?
            .ok_or_else(|| Failure::failed(format!("{}: vanished", self.path().display())))?;
        let dir = kit
            .subdir(OsStr::new(tag.as_str()), Some(DIR_MODE), true)?
            .ok_or_else(|| Failure::failed(format!("{}: vanished", kit.path().display())))?;
        Ok(TagDir {
            dir,
            tag: tag.clone(),
        })
    }

    /// The directory of `tag` if it exists (nothing is created).
    pub fn find(&self, tag: &Tag) -> Result<Option<TagDir>, Failure> {
        let Some(kit) = self.kit_dir(false)? else {
            return Ok(None);
        };
        Ok(kit
            .subdir(OsStr::new(tag.as_str()), None, true)?
            .map(|dir| TagDir {
                dir,
                tag: tag.clone(),
            }))
    }

    /// Every tag with a directory, sorted; other names (not valid tags, not directories, such
    /// as lkh-nas's older `<TAG>.addr` files) are skipped.
    pub fn tags(&self) -> Result<Vec<Tag>, Failure> {
        let Some(kit) = self.kit_dir(false)? else {
            return Ok(Vec::new());
        };
        Ok(kit
            .entries()?
            .iter()
            .filter(|n| std::fs::symlink_metadata(kit.path().join(n)).is_ok_and(|m| m.is_dir()))
            .filter_map(|n| n.to_str())
            .filter_map(|n| Tag::parse(n).ok())
            .collect())
    }

    /// `value` stored as `name` for `tag` ([`TagDir::store`]).
    pub fn store(&self, tag: &Tag, name: &str, value: &[u8]) -> Result<(), Failure> {
        self.tag(tag)?.store(name, value)
    }

    /// The value stored as `name` for `tag`, `None` if there is none.
    pub fn load(&self, tag: &Tag, name: &str) -> Result<Option<Vec<u8>>, Failure> {
        match self.find(tag)? {
            Some(d) => d.load(name),
            None => Ok(None),
        }
    }

    /// Removes `name` of `tag`; `Ok(false)` if it was not there.
    pub fn remove(&self, tag: &Tag, name: &str) -> Result<bool, Failure> {
        match self.find(tag)? {
            Some(d) => d.remove(name),
            None => Ok(false),
        }
    }
}

/// One tag's directory, opened and checked.
#[derive(Debug)]
pub struct TagDir {
    dir: Dir,
    tag: Tag,
}

/// A value name: `[A-Za-z0-9_-]` words joined by `.`, not starting with `.`, not `lock`.
fn check_name(name: &str) -> Result<(), Failure> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name != LOCK_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "run-state name {name:?} is not allowed (internal error: please report it)"
        )))
    }
}

impl TagDir {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn tag(&self) -> &Tag {
        &self.tag
    }

    /// Replaces `name` with `value` atomically (mode 0600).
    pub fn store(&self, name: &str, value: &[u8]) -> Result<(), Failure> {
        check_name(name)?;
        self.dir.write_atomic(OsStr::new(name), value, FILE_MODE)
    }

    /// The value of `name`, `None` if missing.
    pub fn load(&self, name: &str) -> Result<Option<Vec<u8>>, Failure> {
        check_name(name)?;
        self.dir.read(OsStr::new(name))
    }

    /// Removes `name`; `Ok(false)` if it was not there.
    pub fn remove(&self, name: &str) -> Result<bool, Failure> {
        check_name(name)?;
        self.dir.remove(OsStr::new(name))
    }

    /// Takes the tag's lock for `action` (a word saying who holds it), waiting at most until
    /// `deadline`; the lock is held until the returned value is dropped.
    pub fn lock(&self, action: &str, deadline: Deadline) -> Result<TagLock, Failure> {
        let path = self.dir.path().join(LOCK_NAME);
        let registered = Registered::wait(&path, deadline)
            .ok_or_else(|| busy(&self.tag, &path, "another action of this process", deadline))?;
        let mut file = self.dir.open_rw(OsStr::new(LOCK_NAME), FILE_MODE)?;
        let mut announced = false;
        let mut pause = Duration::from_millis(2);
        loop {
            match fcntl(&file, FcntlArg::F_SETLK(&write_lock(libc::F_WRLCK))) {
                Ok(_) => break,
                Err(Errno::EAGAIN | Errno::EACCES | Errno::EINTR) => {}
                Err(e) => {
                    return Err(Failure::failed(format!(
                        "{}: cannot lock: {}: check the run directory",
                        path.display(),
                        e.desc()
                    )));
                }
            }
            let holder = holder(&mut file);
            if deadline.expired() {
                return Err(busy(&self.tag, &path, &holder, deadline));
            }
            if !announced {
                log::info!(
                    "waiting for {holder} to finish: actions on resource {} run one at a time",
                    self.tag
                );
                announced = true;
            }
            std::thread::sleep(deadline.cap(pause));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        // who holds it, for the message of whoever waits next (the lock is held: a failed
        // write only makes that message vaguer)
        let note = format!("{action} (pid {})\n", std::process::id());
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(note.as_bytes()));
        Ok(TagLock {
            _file: file,
            _registered: registered,
        })
    }
}

fn write_lock(kind: libc::c_int) -> libc::flock {
    libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

/// What the lock file says about its holder (bounded, escaped), or a generic word.
fn holder(file: &mut File) -> String {
    let mut buf = Vec::new();
    let _ = file.rewind();
    let _ = Read::by_ref(file).take(80).read_to_end(&mut buf);
    let text = crate::logging::escape(String::from_utf8_lossy(&buf).trim());
    if text.is_empty() {
        "another action".to_owned()
    } else {
        text
    }
}

fn busy(tag: &Tag, lock: &Path, holder: &str, deadline: Deadline) -> Failure {
    Failure::failed(format!(
        "resource {tag}: {holder} still holds {} after {}s, so this action did not run (actions on one resource run one at a time): run it again once that one has finished",
        lock.display(),
        deadline.elapsed().as_secs()
    ))
}

/// Lock files held by this process: a second lock of one tag in the same process waits here
/// (record locks of one process never conflict, and opening and closing the file again would
/// even release the first one).
static HELD: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

#[derive(Debug)]
struct Registered(PathBuf);

impl Registered {
    fn wait(path: &Path, deadline: Deadline) -> Option<Registered> {
        loop {
            if let Ok(mut held) = HELD.lock()
                && !held.iter().any(|p| p == path)
            {
                held.push(path.to_path_buf());
                return Some(Registered(path.to_path_buf()));
            }
            if deadline.expired() {
                return None;
            }
            std::thread::sleep(deadline.cap(Duration::from_millis(5)));
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut held) = HELD.lock() {
            held.retain(|p| p != &self.0);
        }
    }
}

/// A held tag lock; dropping it releases the lock (so does the process's exit).
#[derive(Debug)]
pub struct TagLock {
    // field order: the file (and with it the record lock) goes before the registry entry
    _file: File,
    _registered: Registered,
}

/// A kit's long-running daemon (lkh-scsipr's `watch`), as other processes see it:
/// `<run dir>/<kit>/<name>.pid`, on which the daemon holds a POSIX write lock for its whole
/// life (released by the kernel when it dies, however it dies) and whose modification time it
/// renews at every cycle ([`Daemon::beat`]). [`RunDir::daemon`] asks the kernel who holds the
/// lock (`F_GETLK`), so a file left behind by a dead daemon never reads as a running one, and
/// the age of the last beat tells a daemon that is stopped or stuck from one that works.
#[derive(Debug)]
pub struct Daemon {
    file: File,
}

/// What [`RunDir::daemon`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonState {
    /// The process that holds the lock.
    pub pid: i32,
    /// How long ago it last beat (`None`: the clock went backwards).
    pub since_beat: Option<Duration>,
}

impl Daemon {
    /// Renews the beat (the file's modification time, set to now on the open descriptor).
    pub fn beat(&self) {
        let now = nix::sys::time::TimeSpec::UTIME_NOW;
        if let Err(e) = nix::sys::stat::futimens(&self.file, &now, &now) {
            log::debug!("cannot renew the daemon's beat: {e}");
        }
    }
}

impl RunDir {
    /// Takes `<name>.pid` for this process as the kit's daemon `name`: refused while another
    /// process holds it (a second daemon of the same kind).
    pub fn hold_daemon(&self, name: &str) -> Result<Daemon, Failure> {
        check_name(name)?;
        let file_name = format!("{name}.pid");
        let kit = self
            .kit_dir(true)?
            .ok_or_else(|| Failure::failed(format!("{}: vanished", self.path().display())))?;
        let mut file = kit.open_rw(OsStr::new(&file_name), FILE_MODE)?;
        match fcntl(&file, FcntlArg::F_SETLK(&write_lock(libc::F_WRLCK))) {
            Ok(_) => {}
            Err(Errno::EAGAIN | Errno::EACCES) => {
                return Err(Failure::failed(format!(
                    "{}: {name} is already running ({}): one is enough",
                    kit.path().join(&file_name).display(),
                    holder(&mut file)
                )));
            }
            Err(e) => {
                return Err(Failure::failed(format!(
                    "{}: cannot lock: {}: check the run directory",
                    kit.path().join(&file_name).display(),
                    e.desc()
                )));
            }
        }
        let note = format!("pid {}\n", std::process::id());
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(note.as_bytes()));
        let d = Daemon { file };
        d.beat();
        Ok(d)
    }

    /// The kit's daemon `name`, when a process holds it (`None`: none runs).
    pub fn daemon(&self, name: &str) -> Result<Option<DaemonState>, Failure> {
        check_name(name)?;
        let Some(kit) = self.kit_dir(false)? else {
            return Ok(None);
        };
        let file_name = format!("{name}.pid");
        let Some(file) = kit.open_existing(OsStr::new(&file_name))? else {
            return Ok(None);
        };
        let mut probe = write_lock(libc::F_WRLCK);
        fcntl(&file, FcntlArg::F_GETLK(&mut probe)).map_err(|e| {
            Failure::failed(format!(
                "{}: cannot ask who holds it: {}",
                kit.path().join(&file_name).display(),
                e.desc()
            ))
        })?;
        if probe.l_type == libc::F_UNLCK as libc::c_short {
            return Ok(None);
        }
        let since_beat = file
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok());
        Ok(Some(DaemonState {
            pid: probe.l_pid,
            since_beat,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    struct Tmp(PathBuf);
    impl Tmp {
        fn new(name: &str) -> Tmp {
            let d =
                std::env::temp_dir().join(format!("lkh-runstate-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            Tmp(d)
        }
    }
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn tag(t: &str) -> Tag {
        Tag::parse(t).unwrap()
    }

    #[test]
    fn layout_is_per_kit_and_tag_with_fixed_modes() {
        let t = Tmp::new("layout");
        let run = RunDir::at(&t.0, "scsipr");
        for name in ["x", "x.fenced", ".x"] {
            run.store(&tag(name), "watch", name.as_bytes()).unwrap();
        }
        for name in ["x", "x.fenced", ".x"] {
            assert_eq!(
                run.load(&tag(name), "watch").unwrap().unwrap(),
                name.as_bytes(),
                "{name} kept its own value"
            );
        }
        assert_eq!(run.tags().unwrap(), [tag(".x"), tag("x"), tag("x.fenced")]);
        for p in [t.0.clone(), t.0.join("scsipr"), t.0.join("scsipr/x")] {
            let m = std::fs::symlink_metadata(&p).unwrap();
            assert!(m.is_dir());
            assert_eq!(m.mode() & 0o7777, DIR_MODE, "{}", p.display());
        }
        let m = std::fs::symlink_metadata(t.0.join("scsipr/x/watch")).unwrap();
        assert_eq!(m.mode() & 0o7777, FILE_MODE);
        assert!(run.remove(&tag("x"), "watch").unwrap());
        assert_eq!(run.load(&tag("x"), "watch").unwrap(), None);
        assert_eq!(run.load(&tag("never"), "watch").unwrap(), None);
        assert!(
            !t.0.join("scsipr/never").exists(),
            "loading creates nothing"
        );
        assert!(run.store(&tag("x"), LOCK_NAME, b"").is_err());
        assert!(run.store(&tag("x"), "../escape", b"").is_err());
        assert_eq!(RunDir::at(t.0.join("none"), "ip").tags().unwrap(), []);
        std::fs::write(t.0.join("scsipr/y.addr"), b"").unwrap();
        assert_eq!(
            run.tags().unwrap(),
            [tag(".x"), tag("x"), tag("x.fenced")],
            "files are no tags"
        );
    }

    #[test]
    fn planted_links_and_foreign_or_open_directories_are_refused() {
        let t = Tmp::new("hostile");
        let run = RunDir::at(&t.0, "scsipr");
        run.store(&tag("a"), "watch", b"1").unwrap();

        // a link in place of a tag directory
        let elsewhere = t.0.join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, t.0.join("scsipr/b")).unwrap();
        let e = run.store(&tag("b"), "watch", b"1").unwrap_err();
        assert!(e.message.contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

        // a link in place of a value file
        let victim = t.0.join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, t.0.join("scsipr/a/other")).unwrap();
        let e = run.load(&tag("a"), "other").unwrap_err();
        assert!(e.message.contains("symbolic link"), "{e}");

        // a group-writable kit directory made by someone else
        std::fs::set_permissions(t.0.join("scsipr"), std::fs::Permissions::from_mode(0o770))
            .unwrap();
        let e = run.store(&tag("a"), "watch", b"2").unwrap_err();
        assert_eq!(e.exit, crate::Exit::Usage);
        assert!(e.message.contains("chmod 0750"), "{e}");
        std::fs::set_permissions(t.0.join("scsipr"), std::fs::Permissions::from_mode(0o700))
            .unwrap();

        if nix::unistd::geteuid().is_root() {
            nix::unistd::chown(
                &t.0.join("scsipr/a"),
                Some(nix::unistd::Uid::from_raw(4321)),
                None,
            )
            .unwrap();
            let e = run.load(&tag("a"), "watch").unwrap_err();
            assert!(e.message.contains("owned by uid 4321"), "{e}");
            let e = run
                .tags()
                .map(|_| ())
                .and_then(|()| run.tag(&tag("a")).map(|_| ()));
            assert!(e.is_err());
        }
    }

    #[test]
    fn the_tag_lock_waits_within_the_deadline_and_then_succeeds() {
        let t = Tmp::new("lock");
        let run = RunDir::at(&t.0, "toy");
        let dir = run.tag(&tag("res")).unwrap();
        let held = dir
            .lock("restore", Deadline::after(Duration::from_secs(5)))
            .unwrap();
        let text = std::fs::read_to_string(t.0.join("toy/res/lock")).unwrap();
        assert_eq!(text, format!("restore (pid {})\n", std::process::id()));

        // a second taker, in this process (another thread) or another, waits and gives up
        let other = run.tag(&tag("res")).unwrap();
        let e = std::thread::spawn(move || {
            other
                .lock("quickCheck", Deadline::after(Duration::from_millis(100)))
                .unwrap_err()
        })
        .join()
        .unwrap();
        assert!(e.message.contains("still holds"), "{e}");
        assert!(e.message.contains("resource res"), "{e}");

        // another tag is not held up
        let _b = run
            .tag(&tag("res.fenced"))
            .unwrap()
            .lock("quickCheck", Deadline::after(Duration::from_millis(100)))
            .unwrap();

        // once the holder lets go, a waiter gets it
        let waiter = run.tag(&tag("res")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || {
            tx.send(()).unwrap();
            waiter
                .lock("remove", Deadline::after(Duration::from_secs(30)))
                .map(|_| ())
        });
        rx.recv().unwrap();
        drop(held);
        h.join().unwrap().unwrap();
    }
}
