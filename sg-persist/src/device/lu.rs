//! [`Lu`]: the paths of one logical unit, each opened and confirmed (by VPD 0x83 and 0x80)
//! to reach the same LU; [`Lu::any_path`] runs a command on the first path that answers.

use std::path::Path;
use std::time::Instant;

use super::{Error, Options, ScsiPath};
use crate::parse::{self, Identity, LuId};
use crate::path::{self, PathInfo, Resolved, SysRoot};
use crate::sense::Reply;

/// A path that did not answer when the LU was opened.
#[derive(Debug)]
pub struct DeadPath {
    /// The path.
    pub info: PathInfo,
    /// Why it did not answer.
    pub error: Error,
}

/// A logical unit and its paths, all confirmed to be one LU by their VPD 0x83 designators and
/// VPD 0x80 serial number (see [`Identity::mismatch`]).
#[derive(Debug)]
pub struct Lu {
    /// The resolved device name.
    pub resolved: Resolved,
    /// The LU's best designator (see [`parse::best_designator`]).
    pub id: LuId,
    /// Everything that identified it (`None` for a single path opened without identifying).
    pub identity: Option<Identity>,
    /// Paths that answered, in sysfs order.
    pub paths: Vec<ScsiPath>,
    /// Paths that did not answer INQUIRY (a multipath path that is down).
    pub dead: Vec<DeadPath>,
}

impl Lu {
    /// Resolves `input`, opens every path and confirms they are one LU.
    pub fn open(
        input: &Path,
        root: &SysRoot,
        opts: Options,
        deadline: Instant,
    ) -> Result<Lu, Error> {
        let resolved = path::resolve(input, root)?;
        Lu::open_resolved(resolved, opts, deadline)
    }

    /// Opens the paths of an already resolved device. A path without a usable sg node fails
    /// the whole open ([`Error::NoSgNode`]: the node's setup, not the path, is wrong).
    pub fn open_resolved(
        resolved: Resolved,
        opts: Options,
        deadline: Instant,
    ) -> Result<Lu, Error> {
        let mut paths = Vec::new();
        let mut dead = Vec::new();
        let mut id: Option<(String, LuId, Option<Identity>)> = None;
        for info in &resolved.paths {
            let single = resolved.paths.len() == 1;
            let unnamed = || LuId {
                kind: 0xff,
                bytes: info.name.as_bytes().to_vec(),
            };
            let p = match ScsiPath::open(info.clone(), opts) {
                Ok(p) => p,
                Err(e @ Error::NoSgNode { .. }) => return Err(e),
                Err(error) => {
                    dead.push(DeadPath {
                        info: info.clone(),
                        error,
                    });
                    continue;
                }
            };
            let opened = Ok(p).and_then(|mut p: ScsiPath| {
                if single && !opts.identify_single {
                    return Ok((p, unnamed(), None));
                }
                let ident = match p.identity(deadline) {
                    Ok(i) => i,
                    // One path has nothing to be compared with: a disk without a usable
                    // designator is still usable, known by its name.
                    Err(Error::Parse { .. }) if single => return Ok((p, unnamed(), None)),
                    Err(e) if single && e.is_unsupported() => return Ok((p, unnamed(), None)),
                    Err(e) => return Err(e),
                };
                let lid = parse::best_designator(&ident.designators)
                    .cloned()
                    .unwrap_or_else(unnamed);
                Ok((p, lid, Some(ident)))
            });
            match opened {
                Ok((p, lid, ident)) => {
                    match &id {
                        None => id = Some((info.name.clone(), lid, ident)),
                        Some(first) => {
                            let why = match (&first.2, &ident) {
                                (Some(a), Some(b)) => a.mismatch(b),
                                _ if first.1 != lid => {
                                    Some("their VPD 0x83 designators differ".into())
                                }
                                _ => None,
                            };
                            if let Some(reason) = why {
                                return Err(Error::DifferentLu {
                                    input: resolved.input.clone(),
                                    first: Box::new((first.0.clone(), first.1.clone())),
                                    other: Box::new((info.name.clone(), lid)),
                                    reason,
                                });
                            }
                        }
                    }
                    paths.push(p);
                }
                Err(error) => dead.push(DeadPath {
                    info: info.clone(),
                    error,
                }),
            }
        }
        match id {
            Some((_, id, identity)) => Ok(Lu {
                resolved,
                id,
                identity,
                paths,
                dead,
            }),
            None => {
                let last = dead.pop().map(|d| d.error).unwrap_or(Error::Deadline {
                    dev: resolved.input.clone(),
                    cmd: "INQUIRY VPD 0x83",
                });
                Err(Error::NoWorkingPath {
                    input: resolved.input.clone(),
                    last: Box::new(last),
                })
            }
        }
    }

    /// The name the admin gave.
    pub fn input(&self) -> &Path {
        &self.resolved.input
    }

    /// Runs `f` on the first path that gives an answer that is not a transport-level failure
    /// (conflicts and other device answers are returned as they are).
    pub fn any_path<T>(
        &mut self,
        mut f: impl FnMut(&mut ScsiPath) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut last = None;
        for p in &mut self.paths {
            match f(p) {
                Ok(v) => return Ok(v),
                Err(e) if path_failure(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(Error::NoWorkingPath {
            input: self.resolved.input.clone(),
            last: Box::new(last.unwrap_or(Error::Deadline {
                dev: self.resolved.input.clone(),
                cmd: "any command",
            })),
        })
    }
}

/// Whether an error says the path (not the LU) failed, so another path may still answer.
pub fn path_failure(e: &Error) -> bool {
    match e {
        Error::Io { .. } | Error::Open { .. } | Error::Deadline { .. } => true,
        Error::Failed { reply, .. } => matches!(
            reply,
            Reply::Transport { .. } | Reply::TimedOut | Reply::NotReady(_)
        ),
        _ => false,
    }
}
