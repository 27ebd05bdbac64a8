//! Wrappers for LifeKeeper's Generic Application (gen/app) kit, the documented way to plug
//! third-party scripts into LifeKeeper for Linux.
//!
//! The gen/app wizard asks for the paths of a restore, remove, quickCheck and local-recovery
//! script, **copies** each file to `$LKROOT/subsys/gen/resources/app/actions/!<action>/<tag>`
//! (recover: `…/app/recovery/!recover/<tag>`) and runs the copy with `-t <tag> -i <id>`.
//! A copy of a kit binary would go stale at the next upgrade, so we hand the wizard a
//! three-line `/bin/sh` wrapper per action that execs the installed binary with its action and
//! passes LifeKeeper's arguments through. The copy then keeps working across upgrades.
//!
//! The second line of every wrapper is a marker (`# lkhelpers gen/app wrapper: kit=… action=…
//! binary=…`). It lets [`write`] tell its own files from an admin's (it never overwrites the
//! latter) and lets `lkh-platform check-lifekeeper` recognise and verify the copies.

use crate::cli::Action;
use crate::exit::Failure;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// LifeKeeper's install root when `$LKROOT` is not set.
pub const DEFAULT_LKROOT: &str = "/opt/LifeKeeper";
/// Where `genapp` writes the wrappers by default: `/usr/lib/lkhelpers/genapp/<kit>/`.
pub const DEFAULT_DIR: &str = "/usr/lib/lkhelpers/genapp";
/// The gen/app kit's resources under `$LKROOT`, and its directories that hold the per-tag
/// copies.
pub const APP_DIR: &str = "subsys/gen/resources/app";
pub const ACTIONS_DIR: &str = "subsys/gen/resources/app/actions";
pub const RECOVERY_DIR: &str = "subsys/gen/resources/app/recovery";

const MARKER: &str = "# lkhelpers gen/app wrapper: ";
/// Bytes every lkhelpers binary contains ([`crate::run`] keeps them), so a copy of one can be
/// recognised before it is ever run (`lkh-platform check-lifekeeper` runs only those).
pub const BINARY_MARKER: &[u8] = b"lkhelpers-binary-marker:2c8f1e";
/// The binary the wrappers exec when set (default: the running binary's own path); the
/// packaging sets it to the installed path, since it writes the wrappers from a staging tree.
pub const BINARY_ENV: &str = "LKHELPERS_GENAPP_BINARY";

/// Wrappers are small; anything larger is not one of ours.
pub const MAX_WRAPPER_LEN: usize = 4096;

/// The directory `genapp` uses for `kit` when none is given.
pub fn default_dir(kit: &str) -> PathBuf {
    Path::new(DEFAULT_DIR).join(kit)
}

/// The directory where gen/app keeps its copies of the `action` scripts, one per tag.
pub fn copy_dir(lkroot: &Path, action: Action) -> PathBuf {
    let base = if action == Action::Recover {
        RECOVERY_DIR
    } else {
        ACTIONS_DIR
    };
    lkroot.join(base).join(format!("!{}", action.name()))
}

/// Where gen/app keeps its copy of the `action` script of resource `tag`.
pub fn copy_path(lkroot: &Path, action: Action, tag: &str) -> PathBuf {
    copy_dir(lkroot, action).join(tag)
}

/// The action named by a gen/app copy directory (`!restore` → restore), exactly spelt.
pub fn action_from_dir(name: &str) -> Option<Action> {
    Action::exact(name.strip_prefix('!')?)
}

/// The gen/app wizard's field that takes the `action` script.
pub fn wizard_field(action: Action) -> &'static str {
    match action {
        Action::Restore => "Restore Script",
        Action::Remove => "Remove Script",
        Action::QuickCheck => "QuickCheck Script",
        Action::Recover => "Local Recovery Script",
    }
}

/// What a wrapper file says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wrapper {
    pub kit: String,
    pub action: Action,
    pub binary: PathBuf,
}

impl Wrapper {
    /// The file's exact text.
    pub fn render(&self) -> String {
        let bin = self.binary.display();
        format!(
            "#!/bin/sh\n{MARKER}kit={} action={} binary={bin}\nexec '{bin}' {} \"$@\"\n",
            self.kit,
            self.action.name(),
            self.action.name()
        )
    }

    /// Reads a wrapper's marker line. `None` when the text is not an lkhelpers wrapper at all;
    /// a wrapper whose body differs from what it would render is still returned (the caller
    /// compares with [`Wrapper::render`] to find hand edits).
    pub fn parse(text: &str) -> Option<Wrapper> {
        let mut lines = text.lines();
        if lines.next()? != "#!/bin/sh" {
            return None;
        }
        let fields = lines.next()?.strip_prefix(MARKER)?;
        // binary= comes last and may hold spaces
        let (head, bin) = fields.split_once(" binary=")?;
        let (mut kit, mut action) = (None, None);
        for f in head.split(' ') {
            match f.split_once('=') {
                Some(("kit", v)) => kit = Some(v.to_owned()),
                Some(("action", v)) => action = Action::exact(v),
                _ => return None,
            }
        }
        Some(Wrapper {
            kit: kit?,
            action: action?,
            binary: PathBuf::from(bin),
        })
    }
}

/// What happened to one wrapper file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Created,
    Unchanged,
    /// An older wrapper of ours (another binary path, an earlier format) was rewritten.
    Updated,
}

fn check_binary_path(exe: &Path) -> Result<(), Failure> {
    let s = exe.to_string_lossy();
    if !exe.is_absolute() || s.contains(['\'', '\n', '\\']) || exe.to_str().is_none() {
        return Err(Failure::usage(format!(
            "{}: the binary path must be absolute, valid UTF-8 and free of quotes, backslashes and newlines: install the binary elsewhere (e.g. /usr/sbin)",
            exe.display()
        )));
    }
    Ok(())
}

/// Writes the four wrappers of `kit` (calling `exe`) into `dir`, creating it if needed.
/// Refuses, before changing anything, when a file there is not a wrapper of ours or is a
/// symbolic link. Each file is replaced atomically (written aside, then renamed), mode 0755.
pub fn write(dir: &Path, kit: &str, exe: &Path) -> Result<Vec<(PathBuf, Change)>, Failure> {
    check_binary_path(exe)?;
    check_dir(dir, nix::unistd::geteuid().is_root())?;
    let mut plan = Vec::new();
    for action in Action::ALL {
        let path = dir.join(action.name());
        let want = Wrapper {
            kit: kit.to_owned(),
            action,
            binary: exe.to_owned(),
        }
        .render();
        let change = match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Change::Created,
            Err(e) => {
                return Err(Failure::failed(format!(
                    "{}: cannot inspect: {e}",
                    path.display()
                )));
            }
            Ok(m) if !m.is_file() => {
                return Err(Failure::usage(format!(
                    "{}: exists and is not a regular file (a link, a directory?); nothing was changed: move it away, or give another --dir",
                    path.display()
                )));
            }
            Ok(m) if m.len() > MAX_WRAPPER_LEN as u64 => return Err(not_ours(&path)),
            Ok(_) => {
                let text = std::fs::read_to_string(&path).map_err(|_| not_ours(&path))?;
                match Wrapper::parse(&text) {
                    None => return Err(not_ours(&path)),
                    Some(_) if text == want => Change::Unchanged,
                    Some(_) => Change::Updated,
                }
            }
        };
        plan.push((path, want, change));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::failed(format!("{}: cannot create directory: {e}", dir.display())))?;
    let mut done = Vec::new();
    for (path, text, change) in plan {
        if change != Change::Unchanged {
            replace(&path, &text)?;
        } else {
            // keep the mode right even if someone changed it
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
        }
        done.push((path, change));
    }
    Ok(done)
}

/// The wrappers are run as root by LifeKeeper (its copies of them): a directory someone else
/// may write to would let them swap a wrapper before the wizard copies it. An existing `dir`
/// must be a real directory, not writable by group or others, and owned by root when we run
/// as root.
fn check_dir(dir: &Path, root: bool) -> Result<(), Failure> {
    use std::os::unix::fs::MetadataExt;
    let m = match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Failure::failed(format!(
                "{}: cannot inspect: {e}",
                dir.display()
            )));
        }
        Ok(m) => m,
    };
    let problem = if !m.is_dir() {
        Some("is not a directory (a link?)".to_owned())
    } else if m.mode() & 0o022 != 0 {
        Some(format!(
            "is writable by group or others (mode {:o})",
            m.mode() & 0o7777
        ))
    } else if root && m.uid() != 0 {
        Some(format!("is owned by uid {}, not root", m.uid()))
    } else {
        None
    };
    match problem {
        Some(p) => Err(Failure::usage(format!(
            "{}: {p}; LifeKeeper runs copies of these wrappers as root, so nothing was written: use a root-owned directory that only root can write (chmod go-w, chown root:), or another --dir",
            dir.display()
        ))),
        None => Ok(()),
    }
}

fn not_ours(path: &Path) -> Failure {
    Failure::usage(format!(
        "{}: exists and was not written by genapp; nothing was changed: move it away, or give another --dir",
        path.display()
    ))
}

fn replace(path: &Path, text: &str) -> Result<(), Failure> {
    let tmp = path.with_file_name(format!(
        ".{}.lkh-{}",
        path.file_name().map_or("w".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.set_permissions(std::fs::Permissions::from_mode(0o755))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    res.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Failure::failed(format!("{}: cannot write: {e}", path.display()))
    })
}

/// The wizard's questions and what to answer, for `kit` with wrappers in `dir`.
/// `tag` is shown where the wizard asks for it (`TAG` when not given).
pub fn wizard_answers(kit: &str, dir: &Path, tag: Option<&str>, conf_dir: &Path) -> String {
    let tag = tag.unwrap_or("TAG");
    let p = |a: Action| dir.join(a.name()).display().to_string();
    let conf = conf_dir.join(format!("{tag}.conf"));
    let conf = conf.display();
    let bin = format!("lkh-{kit}");
    let rows = [
        (
            "Switchback Type",
            "your policy (intelligent: switch back only when you say so)".to_owned(),
        ),
        ("Server", "this node".to_owned()),
        (wizard_field(Action::Restore), p(Action::Restore)),
        (wizard_field(Action::Remove), p(Action::Remove)),
        (
            wizard_field(Action::QuickCheck),
            format!(
                "{}\n{:29}optional to LifeKeeper, not to you: left out, LifeKeeper assumes the resource is always healthy",
                p(Action::QuickCheck),
                ""
            ),
        ),
        (
            wizard_field(Action::Recover),
            format!(
                "{}\n{:29}optional: left out, every quickCheck failure fails the hierarchy over at once",
                p(Action::Recover),
                ""
            ),
        ),
        (
            "Application Info",
            format!("leave empty (the settings are in {conf})"),
        ),
        (
            "Bring Resource In Service",
            format!("Yes, once {conf} exists and `{bin} validate -t {tag}` passes"),
        ),
        ("Resource Tag", format!("{tag} (names {conf})")),
    ];
    let mut s = String::from(
        "LifeKeeper GUI: Edit > Server > Create Resource Hierarchy, Recovery Kit \"Generic Application\"; answer:\n",
    );
    for (q, a) in rows {
        s += &format!("  {q:<27}{a}\n");
    }
    s += &format!(
        "Then extend the resource to every other node. gen/app passes its copies of the scripts on; on each node\n\
         the tag LifeKeeper offers there (or the one you enter) needs its own file: {}/<that node's tag>.conf.\n\
         Check the wiring on each node with `lkh-platform check-lifekeeper`. {bin} must stay installed where the\n\
         wrappers exec it (upgrades keep it there), so LifeKeeper's copies of the wrappers never go stale.\n",
        conf_dir.display()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lkh-genapp-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn wrapper_renders_and_parses_back() {
        for action in Action::ALL {
            let w = Wrapper {
                kit: "nas".into(),
                action,
                binary: "/usr/sbin/lkh-nas".into(),
            };
            let text = w.render();
            assert!(
                text.ends_with(&format!("exec '/usr/sbin/lkh-nas' {action} \"$@\"\n")),
                "{text}"
            );
            assert_eq!(Wrapper::parse(&text), Some(w));
        }
        let spaced = Wrapper {
            kit: "ip".into(),
            action: Action::Recover,
            binary: "/opt/my tools/lkh-ip".into(),
        };
        assert_eq!(Wrapper::parse(&spaced.render()), Some(spaced));
        for other in [
            "",
            "#!/bin/sh\nexec /usr/sbin/lkh-nas restore \"$@\"\n",
            "#!/bin/bash\n# lkhelpers gen/app wrapper: kit=nas action=restore binary=/x\n",
            "#!/bin/sh\n# lkhelpers gen/app wrapper: kit=nas action=start binary=/x\n",
            "#!/bin/sh\n# lkhelpers gen/app wrapper: kit=nas action=restore\n",
        ] {
            assert_eq!(Wrapper::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn copy_paths_follow_gen_app_layout() {
        let root = Path::new("/opt/LifeKeeper");
        assert_eq!(
            copy_path(root, Action::QuickCheck, "nfs1"),
            Path::new("/opt/LifeKeeper/subsys/gen/resources/app/actions/!quickCheck/nfs1")
        );
        assert_eq!(
            copy_path(root, Action::Recover, "nfs1"),
            Path::new("/opt/LifeKeeper/subsys/gen/resources/app/recovery/!recover/nfs1")
        );
        assert_eq!(action_from_dir("!remove"), Some(Action::Remove));
        assert_eq!(action_from_dir("!quickcheck"), None);
        assert_eq!(action_from_dir("remove"), None);
    }

    #[test]
    fn write_is_idempotent_updates_its_own_and_refuses_foreign_files() {
        let d = dir("write");
        let exe = Path::new("/usr/sbin/lkh-nas");
        let first = write(&d, "nas", exe).unwrap();
        assert!(first.iter().all(|(_, c)| *c == Change::Created));
        let again = write(&d, "nas", exe).unwrap();
        assert!(again.iter().all(|(_, c)| *c == Change::Unchanged));
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(d.join("restore")).unwrap().mode() & 0o7777,
            0o755
        );
        let moved = write(&d, "nas", Path::new("/usr/local/sbin/lkh-nas")).unwrap();
        assert!(moved.iter().all(|(_, c)| *c == Change::Updated));

        std::fs::write(d.join("remove"), "#!/bin/sh\n/my/own/script\n").unwrap();
        let before = std::fs::read_to_string(d.join("restore")).unwrap();
        let f = write(&d, "nas", exe).unwrap_err();
        assert_eq!(f.exit, crate::exit::Exit::Usage);
        assert!(f.message.contains("not written by genapp"), "{f}");
        assert_eq!(
            std::fs::read_to_string(d.join("restore")).unwrap(),
            before,
            "nothing changed"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("remove")).unwrap(),
            "#!/bin/sh\n/my/own/script\n"
        );

        std::fs::remove_file(d.join("remove")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", d.join("remove")).unwrap();
        let f = write(&d, "nas", exe).unwrap_err();
        assert!(f.message.contains("not a regular file"), "{f}");
        assert!(write(&d, "nas", Path::new("relative/lkh-nas")).is_err());

        // a directory others may write to, or one that is a link, is refused before any write
        let open = dir("open");
        std::fs::create_dir_all(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let f = write(&open, "nas", exe).unwrap_err();
        assert!(f.message.contains("writable by group or others"), "{f}");
        assert!(!open.join("restore").exists(), "nothing was written");
        let link = dir("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        let f = write(&link, "nas", exe).unwrap_err();
        assert!(f.message.contains("is not a directory"), "{f}");
        assert!(check_dir(&d, true).is_ok());
        // as root (CI): a directory owned by another user is refused
        if std::os::unix::fs::chown(&d, Some(65534), None).is_ok() {
            let f = check_dir(&d, true).unwrap_err();
            assert!(f.message.contains("owned by uid 65534, not root"), "{f}");
        }
        let _ = std::fs::remove_dir_all(&open);
        let _ = std::fs::remove_file(&link);
        assert!(write(&d, "nas", Path::new("/bad'quote/lkh-nas")).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
