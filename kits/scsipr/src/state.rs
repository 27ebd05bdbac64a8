//! Which resources this node has in service, for `watch`: restore and recover leave a marker
//! `<run dir>/scsipr/<TAG>`, remove deletes it. The run directory is `$LKHELPERS_RUN_DIR` or
//! `/run/lkhelpers` (a tmpfs: nothing is watched after a reboot until LifeKeeper restores).

use std::fs;
use std::path::PathBuf;

/// The marker directory.
pub fn dir() -> PathBuf {
    lkh_common::config::run_dir().join("scsipr")
}

/// Sets (`on`) or clears the marker of `tag`; a failure is logged, never fatal to the action.
pub fn mark(tag: &str, on: bool) {
    let d = dir();
    let p = d.join(tag);
    let r = if on {
        fs::create_dir_all(&d).and_then(|()| fs::write(&p, b"reserved\n"))
    } else {
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    };
    let _ = fs::remove_file(d.join(format!("{tag}.fenced")));
    if let Err(e) = r {
        log::warn!(
            "cannot update the watch marker {}: {e}; `lkh-scsipr watch` may not see this resource",
            p.display()
        );
    }
}

/// Marks `tag` as fenced: `watch` stops checking it until the next restore.
pub fn mark_fenced(tag: &str) {
    let d = dir();
    let _ = fs::rename(d.join(tag), d.join(format!("{tag}.fenced")));
}

/// Tags currently marked as in service.
pub fn watched() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir())
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".fenced") && !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
