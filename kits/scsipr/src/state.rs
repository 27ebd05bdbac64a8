//! Which resources this node has in service, for `watch`: restore and recover store
//! `<run dir>/scsipr/<TAG>/watch` (lkh-common's run-state layer, [`lkh_common::runstate`]) as
//! `in-service`, `watch` turns it into `fenced` when another node took the reservation, and
//! remove deletes it before it starts its work. A Pacemaker resource (an OCF agent call) has
//! no `/etc/lkhelpers/<TAG>.conf`: its start also stores its parameters as `ocf`
//! ([`remember_ocf`]), which `watch` judges it by, and which marks it as Pacemaker's (fencing
//! there is `fence_lkhscsipr`'s: no owner defense, no challenge). One directory per tag: any valid tag is
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

/// The name of a Pacemaker resource's stored parameters in its tag directory.
pub const OCF: &str = "ocf";

/// Stores the OCF parameters of `tag` (`KEY\tVALUE` lines) for `watch`; a failure is logged.
pub fn remember_ocf(tag: &str, params: &[(String, String)]) {
    let text: String = params
        .iter()
        .filter(|(k, v)| !k.contains(['\t', '\n']) && !v.contains(['\t', '\n']))
        .map(|(k, v)| format!("{k}\t{v}\n"))
        .collect();
    if let Err(e) = Tag::parse(tag).and_then(|t| run_dir().store(&t, OCF, text.as_bytes())) {
        log::warn!(
            "cannot store the parameters of {tag} for `lkh-scsipr watch`: {e}; watch does not judge this resource"
        );
    }
}

/// Forgets the OCF parameters of `tag` (stop); a failure is logged.
pub fn forget_ocf(tag: &str) {
    if let Err(e) = Tag::parse(tag).and_then(|t| run_dir().remove(&t, OCF)) {
        log::warn!("{e}");
    }
}

/// The stored OCF parameters of `tag`: `None` for a LifeKeeper resource (none stored).
pub fn ocf_params(run: &RunDir, tag: &Tag) -> Option<Vec<(String, String)>> {
    let b = run.load(tag, OCF).ok()??;
    let s = String::from_utf8(b).ok()?;
    Some(
        s.lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
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
