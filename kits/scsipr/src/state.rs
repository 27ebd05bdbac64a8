//! Which resources this node has in service, for `watch`: restore and recover store
//! `<run dir>/scsipr/<TAG>/watch` (lkh-common's run-state layer, [`lkh_common::runstate`]) as
//! `in-service`, `watch` turns it into `fenced` when another node took the reservation, and
//! remove deletes it before it starts its work. One directory per tag: any valid tag is
//! watched (`x.fenced` and `.x` too) and no tag can touch another's marker. The run directory
//! is `$LKHELPERS_RUN_DIR` or `/run/lkhelpers` (a tmpfs: nothing is watched after a reboot
//! until LifeKeeper restores).

use lkh_common::Tag;
use lkh_common::runstate::RunDir;

/// The marker's name in a tag's directory.
pub const MARKER: &str = "watch";
const IN_SERVICE: &[u8] = b"in-service\n";
const FENCED: &[u8] = b"fenced\n";

/// The kit's run-state directory.
pub fn run_dir() -> RunDir {
    RunDir::new("scsipr")
}

/// Sets (`on`) or clears the marker of `tag`; a failure is logged, never fatal to the action.
pub fn mark(tag: &str, on: bool) {
    mark_in(&run_dir(), tag, on);
}

pub fn mark_in(run: &RunDir, tag: &str, on: bool) {
    let r = Tag::parse(tag).and_then(|t| {
        if on {
            run.store(&t, MARKER, IN_SERVICE)
        } else {
            run.remove(&t, MARKER).map(drop)
        }
    });
    if let Err(e) = r {
        log::warn!(
            "cannot update the watch marker of {tag}: {e}; `lkh-scsipr watch` may not see this resource"
        );
    }
}

/// Marks `tag` as fenced: `watch` stops checking it until the next restore.
pub fn mark_fenced(run: &RunDir, tag: &Tag) {
    if let Err(e) = run.store(tag, MARKER, FENCED) {
        log::warn!("cannot mark {tag} as fenced: {e}; `watch` will judge it again");
    }
}

/// Whether `tag` is marked as in service (not fenced, not removed).
pub fn is_watched(run: &RunDir, tag: &Tag) -> bool {
    matches!(run.load(tag, MARKER), Ok(Some(v)) if v == IN_SERVICE)
}

/// Tags currently marked as in service, sorted; an unsafe run directory is logged.
pub fn watched(run: &RunDir) -> Vec<Tag> {
    match run.tags() {
        Ok(tags) => tags.into_iter().filter(|t| is_watched(run, t)).collect(),
        Err(e) => {
            log::warn!("{e}");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_valid_tag_is_watched_and_markers_never_collide() {
        let root = std::env::temp_dir().join(format!("lkh-scsipr-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let run = RunDir::at(&root, "scsipr");
        let t = |s: &str| Tag::parse(s).unwrap();
        for tag in ["x", "x.fenced", ".x", "y"] {
            mark_in(&run, tag, true);
        }
        assert_eq!(watched(&run), [t(".x"), t("x"), t("x.fenced"), t("y")]);
        // fencing x leaves x.fenced (a tag of its own) alone, and the other way round
        mark_fenced(&run, &t("x"));
        assert_eq!(watched(&run), [t(".x"), t("x.fenced"), t("y")]);
        mark_fenced(&run, &t("x.fenced"));
        mark_in(&run, "y", false);
        assert_eq!(watched(&run), [t(".x")]);
        // a restore watches a fenced tag again
        mark_in(&run, "x", true);
        assert_eq!(watched(&run), [t(".x"), t("x")]);
        assert!(root.join("scsipr/x.fenced/watch").exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
