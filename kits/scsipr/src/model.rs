//! An in-memory SPC-4 logical unit for the policy's unit tests: registrations per I_T nexus,
//! one reservation (all six types; all-registrants types held by every registrant, shown with
//! key 0), PRgeneration, UNIT ATTENTION for preempted and released nexuses (consumed by the
//! path as `ScsiPath` retries it), the RESERVATION CONFLICT rules of PERSISTENT RESERVE OUT,
//! PREEMPT and PREEMPT AND ABORT, optionally PREEMPT AND ABORT refused with ILLEGAL REQUEST
//! 24/00 (as tgt does), and a hook per path that runs before each command: it can inject a
//! timeout (command not run, or run with its answer lost) or let another node act right there,
//! which is how the tests write exact interleavings.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sg_persist::{Error, Keys, PrType, Reply, Reservation, ReservationStatus, Sense, SenseKey};

use crate::pr::{DeadPath, Disk, Nexus};

/// The reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Res {
    pub holder: usize,
    pub key: u64,
    pub t: PrType,
}

/// The logical unit's persistent-reservation state.
#[derive(Debug, Default)]
pub struct Lun {
    pub generation: u32,
    /// (nexus, key), in registration order.
    pub regs: Vec<(usize, u64)>,
    pub res: Option<Res>,
    /// Nexuses with a pending UNIT ATTENTION.
    pub ua: Vec<usize>,
    /// PREEMPT AND ABORT answered ILLEGAL REQUEST, invalid field in CDB (tgt).
    pub no_preempt_abort: bool,
    /// PR OUT commands that reached the LU.
    pub pr_out: usize,
    /// UNIT ATTENTIONs delivered (and retried by the path).
    pub ua_seen: usize,
}

fn all_reg(t: PrType) -> bool {
    t.all_registrants()
}

impl Lun {
    pub fn key_of(&self, n: usize) -> Option<u64> {
        self.regs.iter().find(|(x, _)| *x == n).map(|(_, k)| *k)
    }
    pub fn keys(&self) -> Vec<u64> {
        self.regs.iter().map(|(_, k)| *k).collect()
    }
    fn is_holder(&self, n: usize) -> bool {
        match self.res {
            Some(r) if all_reg(r.t) => self.key_of(n).is_some(),
            Some(r) => r.holder == n,
            None => false,
        }
    }
    fn attention(&mut self, n: usize) {
        if !self.ua.contains(&n) {
            self.ua.push(n);
        }
    }
    /// Removes `n`'s registration, releasing what it held.
    fn unregister(&mut self, n: usize) {
        let held = self.res.is_some_and(|r| !all_reg(r.t) && r.holder == n);
        self.regs.retain(|(x, _)| *x != n);
        if held {
            self.release_res();
        }
        if self.res.is_some_and(|r| all_reg(r.t)) && self.regs.is_empty() {
            self.res = None;
        }
    }
    fn release_res(&mut self) {
        if let Some(r) = self.res.take()
            && matches!(r.t.code(), 5..=8)
        {
            let others: Vec<usize> = self.regs.iter().map(|(n, _)| *n).collect();
            for o in others {
                if o != r.holder {
                    self.attention(o);
                }
            }
        }
    }
    /// Removes every registration with `key` except `keep`'s; how many were removed.
    fn remove_key(&mut self, key: u64, keep: usize) -> usize {
        let gone: Vec<usize> = self
            .regs
            .iter()
            .filter(|(n, k)| *k == key && *n != keep)
            .map(|(n, _)| *n)
            .collect();
        for g in &gone {
            self.regs.retain(|(x, _)| x != g);
            self.attention(*g);
        }
        gone.len()
    }

    /// One PERSISTENT RESERVE OUT from nexus `n`.
    fn pr_out(&mut self, n: usize, sa: u8, t: Option<PrType>, rk: u64, sark: u64) -> Answer {
        self.pr_out += 1;
        let mine = self.key_of(n);
        let checked = || match mine {
            Some(k) if k == rk => Ok(k),
            _ => Err(Answer::Conflict),
        };
        match sa {
            0x00 | 0x06 => {
                if sa == 0x00 && mine.unwrap_or(0) != rk {
                    return Answer::Conflict;
                }
                match (mine, sark) {
                    (None, 0) => return Answer::Good,
                    (Some(_), 0) => self.unregister(n),
                    (Some(_), k) => {
                        for r in &mut self.regs {
                            if r.0 == n {
                                r.1 = k;
                            }
                        }
                    }
                    (None, k) => self.regs.push((n, k)),
                }
                self.generation += 1;
                Answer::Good
            }
            0x01 => {
                let Ok(k) = checked() else {
                    return Answer::Conflict;
                };
                let t = t.unwrap_or(PrType::WriteExclusive);
                match self.res {
                    None => {
                        self.res = Some(Res {
                            holder: n,
                            key: k,
                            t,
                        });
                        Answer::Good
                    }
                    Some(r) if self.is_holder(n) && r.t == t => Answer::Good,
                    Some(_) => Answer::Conflict,
                }
            }
            0x02 => {
                if checked().is_err() {
                    return Answer::Conflict;
                }
                match self.res {
                    Some(r) if self.is_holder(n) => {
                        if Some(r.t) != t {
                            return Answer::Illegal(0x26, 0x04);
                        }
                        self.release_res();
                        Answer::Good
                    }
                    _ => Answer::Good,
                }
            }
            0x03 => {
                if checked().is_err() {
                    return Answer::Conflict;
                }
                let all: Vec<usize> = self.regs.iter().map(|(x, _)| *x).collect();
                for o in all {
                    if o != n {
                        self.attention(o);
                    }
                }
                self.regs.clear();
                self.res = None;
                self.generation += 1;
                Answer::Good
            }
            0x04 | 0x05 => {
                if sa == 0x05 && self.no_preempt_abort {
                    return Answer::Illegal(0x24, 0x00);
                }
                let Ok(k) = checked() else {
                    return Answer::Conflict;
                };
                let t = t.unwrap_or(PrType::WriteExclusive);
                match self.res {
                    None => {
                        if sark == 0 {
                            return Answer::Illegal(0x26, 0x00);
                        }
                        if self.remove_key(sark, n) == 0 {
                            return Answer::Conflict;
                        }
                    }
                    Some(r) if all_reg(r.t) => {
                        if sark == 0 {
                            let others: Vec<usize> = self
                                .regs
                                .iter()
                                .filter(|(x, _)| *x != n)
                                .map(|(x, _)| *x)
                                .collect();
                            for o in others {
                                self.regs.retain(|(x, _)| *x != o);
                                self.attention(o);
                            }
                            self.res = Some(Res {
                                holder: n,
                                key: k,
                                t,
                            });
                        } else if self.remove_key(sark, n) == 0 {
                            return Answer::Conflict;
                        }
                    }
                    Some(r) => {
                        if sark == r.key {
                            self.remove_key(sark, n);
                            self.res = Some(Res {
                                holder: n,
                                key: k,
                                t,
                            });
                        } else if sark == 0 {
                            return Answer::Illegal(0x26, 0x00);
                        } else if self.remove_key(sark, n) == 0 {
                            return Answer::Conflict;
                        }
                    }
                }
                self.generation += 1;
                Answer::Good
            }
            _ => Answer::Illegal(0x24, 0x00),
        }
    }

    /// A power cycle of a target without persist-through-power-loss: every registration and
    /// the reservation are gone, PRgeneration is zero (SPC-4), every nexus gets a UNIT
    /// ATTENTION.
    pub fn power_cycle(&mut self, nexuses: &[usize]) {
        self.regs.clear();
        self.res = None;
        self.generation = 0;
        for n in nexuses {
            self.attention(*n);
        }
    }

    pub fn read_keys(&self) -> Keys {
        Keys {
            generation: self.generation,
            keys: self.keys(),
            truncated: false,
        }
    }

    pub fn read_reservation(&self) -> ReservationStatus {
        ReservationStatus {
            generation: self.generation,
            reservation: self.res.map(|r| Reservation {
                key: if all_reg(r.t) { 0 } else { r.key },
                scope: 0,
                type_code: r.t.code(),
            }),
        }
    }

    /// The key of the one holder under a single-holder or registrants-only type.
    pub fn holder_key(&self) -> Option<u64> {
        self.res.filter(|r| !all_reg(r.t)).map(|r| r.key)
    }
}

enum Answer {
    Good,
    Conflict,
    Illegal(u8, u8),
}

/// What the hook tells the path to do with the command about to be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Run it.
    Pass,
    /// No answer before the deadline; the command never reached the LU.
    Timeout,
    /// No answer before the deadline, but the LU ran it.
    AnswerLost,
}

/// Called before each command with the command's number on this path and its name.
pub type Hook = Box<dyn FnMut(usize, &'static str) -> Fault + Send>;

/// One I_T nexus to a [`Lun`].
pub struct Path {
    pub lun: Arc<Mutex<Lun>>,
    pub nexus: usize,
    pub name: String,
    pub hook: Option<Hook>,
    pub sent: usize,
}

impl Path {
    fn dev(&self) -> PathBuf {
        PathBuf::from(format!("/dev/{}", self.name))
    }
    fn fail(&self, cmd: &'static str, reply: Reply) -> Error {
        Error::Failed {
            dev: self.dev(),
            cmd,
            reply,
        }
    }
    /// Runs the hook, then `f` on the LU (unless the hook says the command is lost).
    fn send<T>(&mut self, cmd: &'static str, f: impl FnOnce(&mut Lun) -> T) -> Result<T, Error> {
        self.sent += 1;
        let fault = match &mut self.hook {
            Some(h) => h(self.sent, cmd),
            None => Fault::Pass,
        };
        if fault == Fault::Timeout {
            return Err(Error::Deadline {
                dev: self.dev(),
                cmd,
            });
        }
        let v = {
            let mut l = self.lun.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(i) = l.ua.iter().position(|n| *n == self.nexus) {
                l.ua.remove(i);
                l.ua_seen += 1;
            }
            f(&mut l)
        };
        if fault == Fault::AnswerLost {
            return Err(Error::Deadline {
                dev: self.dev(),
                cmd,
            });
        }
        Ok(v)
    }
    fn out(
        &mut self,
        cmd: &'static str,
        sa: u8,
        t: Option<PrType>,
        rk: u64,
        sark: u64,
    ) -> Result<(), Error> {
        let n = self.nexus;
        match self.send(cmd, |l| l.pr_out(n, sa, t, rk, sark))? {
            Answer::Good => Ok(()),
            Answer::Conflict => Err(self.fail(cmd, Reply::ReservationConflict)),
            Answer::Illegal(asc, ascq) => Err(self.fail(
                cmd,
                Reply::IllegalRequest(Sense {
                    response_code: 0x70,
                    key: SenseKey::ILLEGAL_REQUEST,
                    asc,
                    ascq,
                }),
            )),
        }
    }
}

impl Path {
    /// PERSISTENT RESERVE OUT CLEAR (not in [`Nexus`]: the policy never sends it).
    pub fn clear(&mut self, key: u64) -> Result<(), Error> {
        self.out("CLEAR", 0x03, None, key, 0)
    }
}

impl Nexus for Path {
    fn label(&self) -> &str {
        &self.name
    }
    fn hctl(&self) -> Option<&str> {
        None
    }
    fn nexus_id(&self) -> String {
        format!("{}#{}", self.name, self.nexus)
    }
    fn register(&mut self, old: u64, new: u64, _: Instant) -> Result<(), Error> {
        self.out("REGISTER", 0x00, None, old, new)
    }
    fn register_ignore(&mut self, new: u64, _: Instant) -> Result<(), Error> {
        self.out("REGISTER AND IGNORE EXISTING KEY", 0x06, None, 0, new)
    }
    fn reserve(&mut self, key: u64, t: PrType, _: Instant) -> Result<(), Error> {
        self.out("RESERVE", 0x01, Some(t), key, 0)
    }
    fn release(&mut self, key: u64, t: PrType, _: Instant) -> Result<(), Error> {
        self.out("RELEASE", 0x02, Some(t), key, 0)
    }
    fn preempt(&mut self, key: u64, victim: u64, t: PrType, _: Instant) -> Result<(), Error> {
        self.out("PREEMPT", 0x04, Some(t), key, victim)
    }
    fn preempt_abort(&mut self, key: u64, victim: u64, t: PrType, _: Instant) -> Result<(), Error> {
        self.out("PREEMPT AND ABORT", 0x05, Some(t), key, victim)
    }
    fn read_keys(&mut self, _: Instant) -> Result<Keys, Error> {
        self.send("READ KEYS", |l| l.read_keys())
    }
    fn read_reservation(&mut self, _: Instant) -> Result<ReservationStatus, Error> {
        self.send("READ RESERVATION", |l| l.read_reservation())
    }
}

/// One node's view of the LU: its paths (one nexus each).
pub struct Node {
    pub name: String,
    pub paths: Vec<Path>,
    pub dead: usize,
}

impl Node {
    /// A node with `nexuses` as its paths (named `<name>p<i>`).
    pub fn new(lun: &Arc<Mutex<Lun>>, name: &str, nexuses: &[usize]) -> Node {
        Node {
            name: name.into(),
            paths: nexuses
                .iter()
                .enumerate()
                .map(|(i, n)| Path {
                    lun: lun.clone(),
                    nexus: *n,
                    name: format!("{name}p{i}"),
                    hook: None,
                    sent: 0,
                })
                .collect(),
            dead: 0,
        }
    }
}

impl Disk for Node {
    type Path = Path;
    fn input(&self) -> PathBuf {
        PathBuf::from(format!("/dev/mapper/{}", self.name))
    }
    fn paths(&mut self) -> &mut [Path] {
        &mut self.paths
    }
    fn live(&self) -> usize {
        self.paths.len()
    }
    fn dead(&self) -> usize {
        self.dead
    }
    fn dead_paths(&self) -> Vec<DeadPath> {
        (0..self.dead)
            .map(|i| DeadPath {
                name: format!("{}d{i}", self.name),
                hctl: None,
                error: "no answer (the model's dead path)".into(),
            })
            .collect()
    }
}
