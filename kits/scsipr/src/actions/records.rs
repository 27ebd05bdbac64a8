//! This node's records of its verified checks: per LU the live paths' nexus identities and how
//! often our key was registered ([`record`]), kept after every successful restore, quickCheck
//! and recover, and forgotten by remove and by a fenced verdict.
//!
//! They let a healthy quickCheck send no PR OUT: registrations change only by PR OUT, and a
//! PREEMPT or CLEAR removes every registration of a key at once, so while the nexuses are the
//! same and our key is registered as often as recorded ([`unchanged`]), no path can have lost
//! its registration. Any difference (a new nexus after a WWPN flip, a path that came back, a
//! lower count) makes quickCheck probe the paths.
//!
//! Stored as `paths` in the tag's run state (`<run dir>/scsipr/<TAG>/paths`, lkh-common's
//! `runstate`: checked root-only directory, mode 0600, replaced atomically, never through a
//! symbolic link), one line per LU, `<device name>\t<record>`.

use std::collections::BTreeMap;

use lkh_common::Tag;

use crate::pr::{Disk, Nexus};

const NAME: &str = "paths";

/// What a successful action leaves for the next check: the live paths' nexus identities and
/// how often our key was registered (see the module doc).
pub(super) fn record<D: Disk>(lu: &mut D, ours: usize) -> String {
    let ids: Vec<String> = lu.paths().iter().map(|p| p.nexus_id()).collect();
    format!("{}|dead={}|keys={ours}", ids.join(","), lu.dead())
}

/// Whether `seen` (the record of the last verified check) still describes the LU: same
/// nexuses, and our key registered at least as often.
pub(super) fn unchanged<D: Disk>(lu: &mut D, seen: Option<&str>, ours: usize) -> bool {
    let Some(seen) = seen else {
        return false;
    };
    let Some((ids, n)) = seen.rsplit_once("|keys=") else {
        return false;
    };
    let now = record(lu, 0);
    let same_ids = now.rsplit_once("|keys=").is_some_and(|(i, _)| i == ids);
    same_ids && n.parse::<usize>().is_ok_and(|n| n > 0 && ours >= n)
}

/// The result of a successful action on one LU: its message and the record for the next check.
pub type Done = (String, String);

/// What quickCheck and recover know from earlier actions on this node.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory<'a> {
    /// The record the last verified action left for this LU (see [`record`]).
    pub seen: Option<&'a str>,
    /// Our records say this node held the disk (a verified restore, quickCheck or recover
    /// since the last remove, and no fenced verdict since).
    pub was_holder: bool,
}

/// This node's records of one tag (`<run dir>/scsipr/<TAG>/paths`), as the hooks, `status`
/// and `watch` read them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Records(pub(super) Option<BTreeMap<String, String>>);

impl Records {
    /// The records of `tag` (none after remove, a fenced verdict, or a reboot).
    pub fn load(tag: &str) -> Records {
        Records(load(tag))
    }
    /// What they say about the LU named `device`.
    pub fn memory(&self, device: &str) -> Memory<'_> {
        Memory {
            seen: self
                .0
                .as_ref()
                .and_then(|k| k.get(device))
                .map(String::as_str),
            was_holder: self.0.is_some(),
        }
    }
}

/// The records of `tag`, or `None` when there are none.
fn load(tag: &str) -> Option<BTreeMap<String, String>> {
    let tag = Tag::parse(tag).ok()?;
    let bytes = match crate::state::run_dir().load(&tag, NAME) {
        Ok(b) => b?,
        Err(e) => {
            log::warn!("{e}");
            return None;
        }
    };
    let s = String::from_utf8(bytes).ok()?;
    Some(
        s.lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect(),
    )
}

/// Replaces the records of `tag`; a failure is logged (the next check probes the paths).
pub(super) fn save(tag: &str, recs: &BTreeMap<String, String>) {
    let Ok(tag) = Tag::parse(tag) else { return };
    let text: String = recs.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
    if let Err(e) = crate::state::run_dir().store(&tag, NAME, text.as_bytes()) {
        log::warn!("{e}; the next quickCheck probes every path");
    }
}

/// Forgets `tag` (remove, fenced).
pub(super) fn clear(tag: &str) {
    if let Ok(tag) = Tag::parse(tag)
        && let Err(e) = crate::state::run_dir().remove(&tag, NAME)
    {
        log::warn!("{e}");
    }
}
