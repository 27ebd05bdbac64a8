//! This node's memory of each LU of a resource ([`LuRecord`]): what its last look saw — the
//! live paths' nexus identities, how often our key was registered, the LU's PR generation —
//! and whether this node lost the disk. Kept after every restore and every quickCheck,
//! recover and `watch` look at a disk this node held; forgotten by remove and by a failed
//! restore.
//!
//! Two uses:
//! - A healthy quickCheck sends no PR OUT: registrations change only by PR OUT, and a PREEMPT
//!   or CLEAR removes every registration of a key at once, so while the nexuses are the same
//!   and our key is registered as often as recorded ([`unchanged`]), no path can have lost
//!   its registration. Any difference (a new nexus after a WWPN flip, a path that came back, a
//!   lower count) makes quickCheck probe the paths.
//! - A node that lost the disk never takes it back. SPC-4's PRgeneration goes up with every
//!   successful PR OUT but RESERVE and RELEASE, and is set to zero by a power on. An empty
//!   disk (no reservation, no registration) whose generation went *up* since this node's last
//!   look was changed by another initiator since — a takeover and release, a CLEAR: "taken
//!   over" (exit 3, see [`Fence::TakenOver`](super::classify::Fence)). One at or below it is
//!   a target that lost its PR state (power cycle, backstore re-created), which recover
//!   re-takes. A fenced verdict is remembered (`lost`): later looks say fenced too, until
//!   LifeKeeper's restore takes the disk afresh or remove ends the resource here.
//!
//! Stored as `paths` in the tag's run state (`<run dir>/scsipr/<TAG>/paths`, lkh-common's
//! `runstate`: checked root-only directory, mode 0600, replaced atomically, never through a
//! symbolic link), one line per LU, `<device name>\t<record>`, the record
//! `<nexus ids>|dead=N|keys=K|gen=G[|lost]`.

use std::collections::BTreeMap;
use std::fmt;

use lkh_common::{Exit, Failure, Tag};

use crate::pr::{Disk, Nexus};

const NAME: &str = "paths";

/// What this node remembers of one LU.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LuRecord {
    /// The live paths' nexus identities and how many did not answer (`ids|dead=N`).
    pub nexuses: String,
    /// How often our key was registered at the last verified check (0: not verified).
    pub keys: usize,
    /// The LU's PR generation at this node's last look (`None`: an older record).
    pub generation: Option<u32>,
    /// This node lost the disk (a fenced verdict).
    pub lost: bool,
}

impl fmt::Display for LuRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}|keys={}", self.nexuses, self.keys)?;
        if let Some(g) = self.generation {
            write!(f, "|gen={g}")?;
        }
        if self.lost {
            write!(f, "|lost")?;
        }
        Ok(())
    }
}

impl LuRecord {
    /// Parses a stored record (the part after the tab); `None` for a line that is not one.
    pub fn parse(s: &str) -> Option<LuRecord> {
        let mut r = LuRecord::default();
        let mut nexuses = Vec::new();
        let mut keys = None;
        for part in s.split('|') {
            if let Some(k) = part.strip_prefix("keys=") {
                keys = Some(k.parse().ok()?);
            } else if let Some(g) = part.strip_prefix("gen=") {
                r.generation = Some(g.parse().ok()?);
            } else if part == "lost" {
                r.lost = true;
            } else {
                nexuses.push(part);
            }
        }
        r.keys = keys?;
        r.nexuses = nexuses.join("|");
        Some(r)
    }

    /// What a look at this LU leaves, given what the look found: a verified check's record
    /// (`out` Ok) replaces it; a fenced verdict marks it lost; any other failure keeps it,
    /// with the generation seen. A LU this node has no record of gets none: only a node that
    /// held a disk has anything to remember of it.
    pub fn after(
        old: Option<&LuRecord>,
        out: &Result<Done, Failure>,
        generation: Option<u32>,
    ) -> Option<LuRecord> {
        match out {
            Ok((_, rec)) => Some(rec.clone()),
            Err(f) => old.map(|o| LuRecord {
                generation: generation.or(o.generation),
                lost: o.lost || f.exit == Exit::Fenced,
                keys: if f.exit == Exit::Fenced { 0 } else { o.keys },
                nexuses: o.nexuses.clone(),
            }),
        }
    }
}

/// What a successful action leaves for the next check: the live paths' nexus identities, how
/// often our key was registered and the PR generation read last (see the module doc).
pub(super) fn record<D: Disk>(lu: &mut D, ours: usize, generation: Option<u32>) -> LuRecord {
    let ids: Vec<String> = lu.paths().iter().map(|p| p.nexus_id()).collect();
    LuRecord {
        nexuses: format!("{}|dead={}", ids.join(","), lu.dead()),
        keys: ours,
        generation,
        lost: false,
    }
}

/// Whether `seen` (the record of the last verified check) still describes the LU: same
/// nexuses, and our key registered at least as often.
pub(super) fn unchanged<D: Disk>(lu: &mut D, seen: Option<&LuRecord>, ours: usize) -> bool {
    let Some(seen) = seen else {
        return false;
    };
    let now = record(lu, 0, None);
    !seen.lost && now.nexuses == seen.nexuses && seen.keys > 0 && ours >= seen.keys
}

/// The result of a successful action on one LU: its message and the record for the next check.
pub type Done = (String, LuRecord);

/// What quickCheck and recover know from earlier actions on this node.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory<'a> {
    /// What this node remembers of this LU (see [`LuRecord`]).
    pub seen: Option<&'a LuRecord>,
    /// Our records say this node held the disk (a verified restore, quickCheck or recover
    /// since the last remove, and no fenced verdict since).
    pub was_holder: bool,
}

impl Memory<'_> {
    /// The generation of this node's last look, when it held the disk and has not lost it.
    pub fn generation(&self) -> Option<u32> {
        self.seen.and_then(|r| r.generation)
    }
    /// This node lost the disk (a fenced verdict since its last restore).
    pub fn lost(&self) -> bool {
        self.seen.is_some_and(|r| r.lost)
    }
}

/// This node's records of one tag (`<run dir>/scsipr/<TAG>/paths`), as the hooks, `status`
/// and `watch` read them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Records(pub(super) Option<BTreeMap<String, LuRecord>>);

impl Records {
    /// The records of `tag` (none after remove, a failed restore, or a reboot).
    pub fn load(tag: &str) -> Records {
        Records(load(tag))
    }
    /// What they say about the LU named `device`.
    pub fn memory(&self, device: &str) -> Memory<'_> {
        let seen = self.0.as_ref().and_then(|k| k.get(device));
        Memory {
            seen,
            was_holder: self.0.is_some() && !seen.is_some_and(|r| r.lost),
        }
    }
    /// The record of `device`.
    pub fn get(&self, device: &str) -> Option<&LuRecord> {
        self.0.as_ref().and_then(|k| k.get(device))
    }
    /// Replaces (or, with `None`, drops) the record of `device`.
    pub fn set(&mut self, device: &str, rec: Option<LuRecord>) {
        match rec {
            Some(r) => {
                self.0
                    .get_or_insert_with(BTreeMap::new)
                    .insert(device.to_owned(), r);
            }
            None => {
                if let Some(m) = self.0.as_mut() {
                    m.remove(device);
                }
            }
        }
    }
    /// Only the records of disks this node lost.
    pub fn lost_only(&self) -> Records {
        Records(self.0.as_ref().map(|m| {
            m.iter()
                .filter(|(_, r)| r.lost)
                .map(|(k, r)| (k.clone(), r.clone()))
                .collect()
        }))
    }
    /// The disks this node lost.
    pub fn lost_devices(&self) -> Vec<String> {
        self.0.as_ref().map_or_else(Vec::new, |m| {
            m.iter()
                .filter(|(_, r)| r.lost)
                .map(|(k, _)| k.clone())
                .collect()
        })
    }
    /// Stores them as the records of `tag` (none left: the file is removed), unless they are
    /// what `before` was.
    pub fn store(&self, tag: &str, before: &Records) {
        if self == before {
            return;
        }
        match &self.0 {
            Some(m) if !m.is_empty() => save(tag, m),
            _ => clear(tag),
        }
    }
}

/// The records of `tag`, or `None` when there are none.
fn load(tag: &str) -> Option<BTreeMap<String, LuRecord>> {
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
            .filter_map(|(a, b)| Some((a.to_owned(), LuRecord::parse(b)?)))
            .collect(),
    )
}

/// Replaces the records of `tag`; a failure is logged (the next check probes the paths).
fn save(tag: &str, recs: &BTreeMap<String, LuRecord>) {
    let Ok(tag) = Tag::parse(tag) else { return };
    let text: String = recs.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
    if let Err(e) = crate::state::run_dir().store(&tag, NAME, text.as_bytes()) {
        log::warn!("{e}; the next quickCheck probes every path");
    }
}

/// Forgets `tag` (remove, a failed restore).
pub(super) fn clear(tag: &str) {
    if let Ok(tag) = Tag::parse(tag)
        && let Err(e) = crate::state::run_dir().remove(&tag, NAME)
    {
        log::warn!("{e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_old_records_parse() {
        let r = LuRecord {
            nexuses: "sdb@2:0:0:1/iqn.a,sdc@3:0:0:1/iqn.a|dead=0".into(),
            keys: 2,
            generation: Some(17),
            lost: false,
        };
        assert_eq!(LuRecord::parse(&r.to_string()), Some(r.clone()));
        let lost = LuRecord { lost: true, ..r };
        assert_eq!(LuRecord::parse(&lost.to_string()), Some(lost));
        // a record written before the generation was kept: no memory of it
        let old = LuRecord::parse("sdb@2:0:0:1/|dead=1|keys=1").unwrap();
        assert_eq!((old.generation, old.keys, old.lost), (None, 1, false));
        assert_eq!(old.nexuses, "sdb@2:0:0:1/|dead=1");
        assert_eq!(LuRecord::parse("garbage"), None);
        assert_eq!(LuRecord::parse("x|keys=z"), None);
    }

    #[test]
    fn a_look_updates_what_this_node_remembers() {
        let held = LuRecord {
            nexuses: "n|dead=0".into(),
            keys: 1,
            generation: Some(5),
            lost: false,
        };
        let fenced = Err(Failure::fenced("taken"));
        let failed = Err(Failure::failed("lost state"));
        // fenced: remembered as lost, with the generation seen
        let r = LuRecord::after(Some(&held), &fenced, Some(9)).unwrap();
        assert!(r.lost);
        assert_eq!((r.generation, r.keys), (Some(9), 0));
        // another failure keeps the record, with the generation seen (a lost state seen at 0)
        let r = LuRecord::after(Some(&held), &failed, Some(0)).unwrap();
        assert!(!r.lost);
        assert_eq!(r.generation, Some(0));
        // no answer: the generation stays what it was
        assert_eq!(
            LuRecord::after(Some(&held), &failed, None),
            Some(held.clone())
        );
        // once lost, lost until restore or remove
        let lost = LuRecord::after(Some(&held), &fenced, Some(9)).unwrap();
        assert!(LuRecord::after(Some(&lost), &failed, Some(9)).unwrap().lost);
        // a node without a record remembers nothing of a disk it never held
        assert_eq!(LuRecord::after(None, &fenced, Some(3)), None);
        // success replaces it
        let ok = Ok(("fine".to_owned(), held.clone()));
        assert_eq!(LuRecord::after(Some(&lost), &ok, Some(1)), Some(held));
    }
}
