//! `install --lkroot DIR`: the action links LifeKeeper looks up,
//! `DIR/subsys/lkhelpers/Resources/<kit>/actions/<action>` → this binary.
//!
//! Idempotent: a correct link is left alone, a link elsewhere is replaced, anything else
//! (a real file or directory) is refused before any change is made.

use crate::cli::Action;
use crate::exit::Failure;
use std::path::{Path, PathBuf};

pub const DEFAULT_LKROOT: &str = "/opt/LifeKeeper";

/// What happened to one link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkChange {
    Created,
    Unchanged,
    Replaced { was: PathBuf },
}

/// The directory that holds a kit's action links.
pub fn actions_dir(lkroot: &Path, kit: &str) -> PathBuf {
    lkroot
        .join("subsys/lkhelpers/Resources")
        .join(kit)
        .join("actions")
}

/// Creates or repairs the four action links of `kit` pointing at `exe`.
pub fn install(
    lkroot: &Path,
    kit: &str,
    exe: &Path,
) -> Result<Vec<(PathBuf, LinkChange)>, Failure> {
    if !exe.is_absolute() {
        return Err(Failure::usage(format!(
            "{}: the binary path must be absolute",
            exe.display()
        )));
    }
    let dir = actions_dir(lkroot, kit);
    let mut plan = Vec::new();
    for action in Action::ALL {
        let link = dir.join(action.name());
        let change = match std::fs::symlink_metadata(&link) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LinkChange::Created,
            Err(e) => {
                return Err(Failure::failed(format!(
                    "{}: cannot inspect: {e}",
                    link.display()
                )));
            }
            Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(&link) {
                Ok(t) if t == exe => LinkChange::Unchanged,
                Ok(t) => LinkChange::Replaced { was: t },
                Err(e) => {
                    return Err(Failure::failed(format!(
                        "{}: cannot read link: {e}",
                        link.display()
                    )));
                }
            },
            Ok(_) => {
                return Err(Failure::usage(format!(
                    "{}: exists and is not a symbolic link; nothing was changed: move it away if it is an old action script, then run install again",
                    link.display()
                )));
            }
        };
        plan.push((link, change));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::failed(format!("{}: cannot create directory: {e}", dir.display())))?;
    for (link, change) in &plan {
        if matches!(change, LinkChange::Replaced { .. }) {
            std::fs::remove_file(link)
                .map_err(|e| Failure::failed(format!("{}: cannot replace: {e}", link.display())))?;
        }
        if *change != LinkChange::Unchanged {
            std::os::unix::fs::symlink(exe, link).map_err(|e| {
                Failure::failed(format!("{}: cannot create link: {e}", link.display()))
            })?;
        }
    }
    Ok(plan)
}
