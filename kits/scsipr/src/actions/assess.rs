//! The one assessment of a resource: [`assess`] ([`assess_lu`] per LU). READ KEYS and READ
//! RESERVATION only, classified from this node's point of view
//! ([`classify_state`]), each path's registration as far as it is known without a PR OUT
//! ([`PathReg`], from this node's records), returned as a [`Health`] value: per LU what was
//! checked (device, key, type, paths), what was found (holder, type, registered keys) and the
//! [`Verdict`]; [`Health::outcome`] is quickCheck's message and exit code.
//!
//! quickCheck and recover start from it ([`check_lu`](super::check::check_lu): a healthy LU is
//! answered from that look alone; a repair is followed by a second look), `status -t TAG`
//! renders it, and `watch` judges by it, so the three cannot disagree about a disk.

use std::borrow::Cow;
use std::time::Instant;

use lkh_common::{Assessment, Failure, Outcome};
use sg_persist::{PrType, Reservation};

use super::classify::{Fence, Held, classify_state};
use super::outcome::combine;
use super::prim::{count, dev, look_full};
use super::records::{LuRecord, Memory, Records, unchanged};
use crate::pr::{Disk, Nexus, Port};
use crate::settings::fmt_key;
use sg_persist::exec::join_all;

/// What one look knows about one path's registration of this node's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathReg {
    /// Registered, known without any PR OUT: the records of the last verified check still
    /// describe the LU (the same nexuses, our key registered as often).
    Recorded,
    /// Not known without a PR OUT (a new nexus, no record, or our key registered fewer times
    /// than recorded): quickCheck probes it with REGISTER(key, key); `status` does not.
    Unprobed,
    /// Registered, known without any PR OUT: READ FULL STATUS lists this path's I_T nexus
    /// (initiator port and target port) with our key.
    Listed,
    /// Our key is registered on no nexus at all, so on no path.
    Unregistered,
    /// Probed by quickCheck or recover with REGISTER: registered.
    Registered,
    /// Probed: it had lost its registration and was registered again.
    ReRegistered,
    /// No answer, when the LU was opened or to the probe (the error).
    NoAnswer(String),
}

impl PathReg {
    /// Whether the path is known to carry our key.
    pub fn registered(&self) -> bool {
        matches!(
            self,
            PathReg::Recorded | PathReg::Listed | PathReg::Registered | PathReg::ReRegistered
        )
    }
    /// The state in a word or two.
    pub fn word(&self) -> &'static str {
        match self {
            PathReg::Recorded => "recorded",
            PathReg::Listed => "registered",
            PathReg::Unprobed => "not probed",
            PathReg::Unregistered => "not registered",
            PathReg::Registered => "registered",
            PathReg::ReRegistered => "re-registered",
            PathReg::NoAnswer(_) => "no answer",
        }
    }
}

/// One path of a LU as the look found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathHealth {
    pub name: String,
    pub hctl: Option<String>,
    pub reg: PathReg,
}

/// The verdict on one LU: the classification of what the disk shows ([`Held`]), fenced, or
/// no answer (the reads failed: no path answers, a command refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Held(Held),
    Fenced(Fence),
    NoAnswer(Failure),
}

/// One look at one LU ([`assess_lu`]): quickCheck's answer for it, and all `status -t TAG`
/// shows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuHealth {
    /// What was checked: the device, this node's key and TYPE, the paths (live ones first,
    /// then those that did not answer when the LU was opened).
    pub device: String,
    pub key: u64,
    pub pr_type: PrType,
    pub paths: Vec<PathHealth>,
    /// Our records say this node held the disk (see [`Memory`]).
    pub was_holder: bool,
    /// The PR generation this node's records hold from its last look (see
    /// [`super::records`]).
    pub last_generation: Option<u32>,
    /// What was found: the reservation and the registered keys, one per I_T nexus (none when
    /// they could not be read).
    pub reservation: Option<Reservation>,
    pub keys: Vec<u64>,
    /// The PR generation the keys and reservation were read at.
    pub generation: Option<u32>,
    pub verdict: Verdict,
}

impl LuHealth {
    /// How often our key is registered.
    pub fn ours(&self) -> usize {
        count(&self.keys, self.key)
    }

    /// What this node remembers of the LU after this look (see [`LuRecord::after`]): the
    /// generation seen, and a fenced verdict; the rest of `old` stays.
    pub fn remembered(&self, old: Option<&LuRecord>) -> Option<LuRecord> {
        let out = self
            .outcome()
            .map(|m| (m, old.cloned().unwrap_or_default()));
        match out {
            Ok(_) => old.map(|o| LuRecord {
                generation: self.generation.or(o.generation),
                ..o.clone()
            }),
            Err(_) => LuRecord::after(old, &out, self.generation),
        }
    }

    /// A LU that could not be opened (`f` says why): every path as not answering.
    pub fn unopened(
        r: &sg_persist::Resolved,
        key: u64,
        t: PrType,
        mem: Memory<'_>,
        f: Failure,
    ) -> LuHealth {
        LuHealth {
            device: r.input.display().to_string(),
            key,
            pr_type: t,
            paths: r
                .paths
                .iter()
                .map(|p| PathHealth {
                    name: p.name.clone(),
                    hctl: p.hctl.clone(),
                    reg: PathReg::NoAnswer(f.message.clone()),
                })
                .collect(),
            was_holder: mem.was_holder,
            last_generation: mem.generation(),
            reservation: None,
            keys: Vec::new(),
            generation: None,
            verdict: Verdict::NoAnswer(f),
        }
    }
}

impl Assessment for LuHealth {
    /// quickCheck's answer for this LU: the one-line summary, or the failure with its exit code.
    fn outcome(&self) -> Outcome {
        let (name, key, t) = (&self.device, self.key, self.pr_type);
        match &self.verdict {
            Verdict::NoAnswer(f) => Err(f.clone()),
            Verdict::Fenced(f) => Err(f.failure(name, key)),
            Verdict::Held(Held::Lost) => Err(lost_state(name, self.was_holder)),
            Verdict::Held(Held::Free) => Err(nobody_holds(name, key)),
            Verdict::Held(Held::WrongType(c)) => Err(wrong_type(name, *c, t)),
            Verdict::Held(Held::Ours) => {
                let n = |f: fn(&PathReg) -> bool| self.paths.iter().filter(|p| f(&p.reg)).count();
                let total = self.paths.len();
                if n(|r| *r == PathReg::Unprobed) > 0 {
                    // only a look without PR OUT (`status`): quickCheck probes these paths
                    return Ok(format!(
                        "{name}: reserved by {} ({t}), the key registered {} time(s) for {total} path(s); which paths carry it is not probed without PR OUT (a new I_T nexus, or no record of a verified check): quickCheck probes each path with REGISTER and re-registers one that lost its key",
                        fmt_key(key),
                        self.ours()
                    ));
                }
                let mut s = format!(
                    "{name}: reserved by {} ({t}), {}/{total} path(s) registered",
                    fmt_key(key),
                    n(PathReg::registered)
                );
                let fixed = n(|r| *r == PathReg::ReRegistered);
                if fixed > 0 {
                    s += &format!(", {fixed} re-registered");
                }
                Ok(s)
            }
        }
    }

    /// The verdict in a few words.
    fn verdict(&self) -> Cow<'_, str> {
        Cow::Borrowed(match &self.verdict {
            Verdict::Held(Held::Ours) => "ours",
            Verdict::Held(Held::Free) => "nobody holds",
            Verdict::Held(Held::WrongType(_)) => "wrong type",
            Verdict::Held(Held::Lost) => "lost PR state",
            Verdict::Fenced(Fence::TakenOver { .. }) => "taken over",
            Verdict::Fenced(_) => "fenced",
            Verdict::NoAnswer(_) => "no answer",
        })
    }
}

/// One look at a resource ([`assess`]): one [`LuHealth`] per configured disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub lus: Vec<LuHealth>,
}

impl Assessment for Health {
    /// quickCheck's answer: every LU's, the worst exit winning (see [`combine`]).
    fn outcome(&self) -> Outcome {
        combine(self.lus.iter().map(LuHealth::outcome).collect())
    }
    /// The verdict of the first LU whose exit code is the resource's.
    fn verdict(&self) -> Cow<'_, str> {
        let exit = self.exit();
        self.lus
            .iter()
            .find(|l| l.exit() == exit)
            .map_or(Cow::Borrowed("no disk"), LuHealth::verdict)
    }
}

pub(super) fn lost_why(name: &str) -> String {
    format!(
        "{name}: the disk shows no reservation and no registration at all: it lost its persistent-reservation state (a target restart without persist-through-power-loss, or PR OUT CLEAR); this is not a takeover by another node"
    )
}

fn lost_state(name: &str, was_holder: bool) -> Failure {
    let why = lost_why(name);
    if was_holder {
        Failure::failed(format!("{why}: recover registers and reserves again"))
    } else {
        Failure::failed(format!(
            "{why}; this node has no record of holding it: run restore on the node that should have the disk"
        ))
        // not in service here (after remove, or never restored): Pacemaker's "not running"
        .not_running()
    }
}

fn nobody_holds(name: &str, key: u64) -> Failure {
    Failure::failed(format!(
        "{name}: nobody holds the reservation (this node's key {} is still registered): recover will take it again",
        fmt_key(key)
    ))
}

fn wrong_type(name: &str, code: u8, t: PrType) -> Failure {
    Failure::failed(format!(
        "{name}: this node holds the reservation with type {} but TYPE is {t}: recover will re-take it with {t}",
        PrType::code_name(code)
    ))
}

/// The one assessment of one LU, which quickCheck, recover, `status -t TAG` and `watch`
/// share. PR IN only: one READ FULL STATUS where the target has it, else READ KEYS and READ
/// RESERVATION, through the first answering path ([`look_full`]), classified from this node's
/// point of view ([`classify_state`]); each path's registration as far as it is known without
/// a PR OUT ([`PathReg`]): listed by READ FULL STATUS, else from `mem`.
pub async fn assess_lu<D: Disk>(
    lu: &mut D,
    key: u64,
    t: PrType,
    mem: Memory<'_>,
    deadline: Instant,
) -> LuHealth {
    if lu.full_status().is_none() {
        *lu.full_status() = mem.seen.and_then(|r| r.full_status);
    }
    let (reservation, keys, generation, verdict, reg) = match look_full(lu, deadline).await {
        Err(f) => (None, Vec::new(), None, Verdict::NoAnswer(f), None),
        Ok(l) => {
            let v = match classify_state(l.res, &l.keys, Some(l.generation), key, t, mem) {
                Ok(held) => Verdict::Held(held),
                Err(fence) => Verdict::Fenced(fence),
            };
            let ours = count(&l.keys, key);
            let reg = if l.full.as_ref().is_some_and(|fs| listed(lu, fs, key)) {
                PathReg::Listed
            } else if unchanged(lu, mem.seen, ours) {
                PathReg::Recorded
            } else if ours == 0 {
                PathReg::Unregistered
            } else {
                PathReg::Unprobed
            };
            (l.res, l.keys, Some(l.generation), v, Some(reg))
        }
    };
    let reg = reg.unwrap_or(PathReg::Unprobed);
    let mut paths: Vec<PathHealth> = lu
        .paths()
        .iter()
        .map(|p| PathHealth {
            name: p.label().to_owned(),
            hctl: p.hctl().map(str::to_owned),
            reg: reg.clone(),
        })
        .collect();
    paths.extend(lu.dead_paths().into_iter().map(|d| PathHealth {
        name: d.name,
        hctl: d.hctl,
        reg: PathReg::NoAnswer(d.error),
    }));
    LuHealth {
        device: dev(lu),
        key,
        pr_type: t,
        paths,
        was_holder: mem.was_holder,
        last_generation: mem.generation(),
        reservation,
        keys,
        generation,
        verdict,
    }
}

/// Whether READ FULL STATUS `fs` lists our key on the I_T nexus of every live path: each path
/// (its initiator port and target port, [`Nexus::port`]) matches a registration of `key`
/// that no other path matches. Anything this node cannot tell (a path whose port it does not
/// know, a registration two paths could claim) is no proof: the records, or a probe, decide.
fn listed<D: Disk>(lu: &mut D, fs: &sg_persist::FullStatus, key: u64) -> bool {
    // first the initiator ports alone (known to this process): a path whose initiator no
    // registration of our key can be is no proof, without reading its target port
    let could = lu.paths().iter().all(|p| {
        p.initiator().is_some_and(|i| {
            fs.registrations
                .iter()
                .any(|r| r.key == key && i.may_be(&r.transport_id))
        })
    });
    if !could {
        return false;
    }
    let ports: Option<Vec<Port>> = lu.paths().iter().map(Nexus::port).collect();
    let Some(ports) = ports.filter(|p| !p.is_empty()) else {
        return false;
    };
    let mut used = vec![false; fs.registrations.len()];
    for port in &ports {
        let mine: Vec<usize> = fs
            .registrations
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.key == key && port.matches(&r.transport_id, r.relative_target_port, r.all_tg_pt)
            })
            .map(|(i, _)| i)
            .collect();
        // exactly one registration, which no other path of ours could claim
        let [i] = mine[..] else {
            return false;
        };
        let shared = ports.iter().filter(|q| {
            let r = &fs.registrations[i];
            q.matches(&r.transport_id, r.relative_target_port, r.all_tg_pt)
        });
        if used[i] || shared.count() != 1 {
            return false;
        }
        used[i] = true;
    }
    true
}

/// The one assessment of a resource: [`assess_lu`] on each of its LUs at once (`lus`, each
/// opened on its own from `resolved`; one that could not be opened is a LU that does not
/// answer, [`LuHealth::unopened`]), with this node's records of `tag`. Changes nothing:
/// `status -t TAG` shows it, and quickCheck ([`check_lu`](super::check::check_lu)) starts
/// from the same look.
pub async fn assess<D: Disk>(
    lus: &mut [Result<D, Failure>],
    resolved: &[sg_persist::Resolved],
    tag: &str,
    key: u64,
    t: PrType,
    deadline: Instant,
) -> Health {
    let known = Records::load(tag);
    let known = &known;
    Health {
        lus: join_all(lus.iter_mut().zip(resolved).map(|(lu, r)| async move {
            let name = r.input.display().to_string();
            match lu {
                Ok(lu) => assess_lu(lu, key, t, known.memory(&name), deadline).await,
                Err(f) => LuHealth::unopened(r, key, t, known.memory(&name), f.clone()),
            }
        }))
        .await,
    }
}
