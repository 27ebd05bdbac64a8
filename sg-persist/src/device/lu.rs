//! [`Lu`]: the paths of one logical unit, each opened and confirmed (by the identity sysfs
//! cached, or VPD 0x83 and 0x80) to reach the same LU, every path at once; [`Lu::any_path`]
//! runs a command on the first path that answers.

use std::path::Path;
use std::time::Instant;

use super::{Error, Options, ScsiPath};
use crate::exec;
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
    /// Paths that could not be opened, whose device the kernel does not run, or that did not
    /// answer INQUIRY (a multipath path that is down).
    pub dead: Vec<DeadPath>,
    /// Whether the target answers READ FULL STATUS (`None`: not asked yet); kept by the
    /// caller, which learns it from the first try.
    pub full_status: Option<bool>,
}

impl Lu {
    /// Resolves `input`, opens every path and confirms they are one LU.
    pub async fn open(
        input: &Path,
        root: &SysRoot,
        opts: Options,
        deadline: Instant,
    ) -> Result<Lu, Error> {
        let resolved = path::resolve(input, root)?;
        Lu::open_resolved(resolved, root, opts, deadline).await
    }

    /// Opens the paths of an already resolved device and confirms they are one LU: each
    /// path's identity is the one the kernel cached in sysfs at scan time
    /// ([`path::sysfs_identity`]), read with INQUIRY (every such path at once) only where
    /// sysfs lacks it; a single path is identified only with [`Options::identify_single`].
    /// No command is sent when sysfs knows every path. A path the kernel does not run
    /// (offline, deleted) is dead without a command; a path without a usable sg node fails
    /// the whole open ([`Error::NoSgNode`]: the node's setup, not the path, is wrong).
    pub async fn open_resolved(
        resolved: Resolved,
        root: &SysRoot,
        opts: Options,
        deadline: Instant,
    ) -> Result<Lu, Error> {
        let single = resolved.paths.len() == 1;
        let mut paths = Vec::new();
        let mut dead = Vec::new();
        for info in &resolved.paths {
            if let Some(state) = info.state.as_deref().filter(|s| path::dead_state(s)) {
                dead.push(DeadPath {
                    info: info.clone(),
                    error: Error::NotRunning {
                        dev: info.dev.clone(),
                        state: state.to_owned(),
                    },
                });
                continue;
            }
            match ScsiPath::open(info.clone(), opts) {
                Ok(p) => paths.push(p),
                Err(e @ Error::NoSgNode { .. }) => return Err(e),
                Err(error) => dead.push(DeadPath {
                    info: info.clone(),
                    error,
                }),
            }
        }
        let identify = (!single || opts.identify_single) && !opts.paths_confirmed;
        let idents = exec::join_all(paths.iter_mut().map(|p| async {
            if !identify {
                return Ok(None);
            }
            if let Some(id) = path::sysfs_identity(&p.info.name, root) {
                return Ok(Some(id));
            }
            match p.identity(deadline).await {
                Ok(i) => Ok(Some(i)),
                // One path has nothing to be compared with: a disk without a usable
                // designator is still usable, known by its name.
                Err(Error::Parse { .. }) if single => Ok(None),
                Err(e) if single && e.is_unsupported() => Ok(None),
                Err(e) => Err(e),
            }
        }))
        .await;
        let mut id: Option<(String, LuId, Option<Identity>)> = None;
        let mut live = Vec::new();
        for (p, ident) in paths.into_iter().zip(idents) {
            let ident = match ident {
                Ok(i) => i,
                Err(error) => {
                    dead.push(DeadPath {
                        info: p.info.clone(),
                        error,
                    });
                    continue;
                }
            };
            let lid = ident
                .as_ref()
                .and_then(|i| parse::best_designator(&i.designators).cloned())
                .unwrap_or_else(|| LuId {
                    kind: 0xff,
                    // confirmed paths are one LU: known by the name the admin gave
                    bytes: if opts.paths_confirmed {
                        resolved.input.as_os_str().as_encoded_bytes().to_vec()
                    } else {
                        p.info.name.as_bytes().to_vec()
                    },
                });
            match &id {
                None => id = Some((p.info.name.clone(), lid, ident)),
                Some(first) => {
                    let why = match (&first.2, &ident) {
                        (Some(a), Some(b)) => a.mismatch(b),
                        _ if first.1 != lid => Some("their VPD 0x83 designators differ".into()),
                        _ => None,
                    };
                    if let Some(reason) = why {
                        return Err(Error::DifferentLu {
                            input: resolved.input.clone(),
                            first: Box::new((first.0.clone(), first.1.clone())),
                            other: Box::new((p.info.name.clone(), lid)),
                            reason,
                        });
                    }
                }
            }
            live.push(p);
        }
        match id {
            Some((_, id, identity)) => Ok(Lu {
                resolved,
                id,
                identity,
                paths: live,
                dead,
                full_status: None,
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
    pub async fn any_path<T>(
        &mut self,
        mut f: impl AsyncFnMut(&mut ScsiPath) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut last = None;
        for p in &mut self.paths {
            match f(p).await {
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
        Error::Io { .. }
        | Error::Open { .. }
        | Error::Deadline { .. }
        | Error::NotRunning { .. } => true,
        Error::Failed { reply, .. } => matches!(
            reply,
            Reply::Transport { .. } | Reply::TimedOut | Reply::NotReady(_)
        ),
        _ => false,
    }
}
