//! Commands on real devices: one [`ScsiPath`] per I_T nexus, and [`Lu`], the set of paths
//! confirmed (by VPD page 0x83) to reach one logical unit.
//!
//! Every command takes a deadline. The per-command timeout handed to the kernel is the
//! smaller of [`Options::cmd_timeout`] and the time left. Where the sg driver is loaded the
//! command runs on `/dev/sgN` through [`SgChannel`], which gives up at the deadline even when
//! the transport queues the request forever (All Paths Down); otherwise it runs as `SG_IO`
//! on the `sd` node opened read-only, so closing it fires no udev "change" event.
//! UNIT ATTENTION is retried up to [`Options::ua_retries`] times; every CDB, parameter list
//! and sense buffer is logged in hex at debug level.

use std::fmt;
use std::fs::OpenOptions;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use log::{debug, info};
use nix::errno::Errno;

use crate::cdb::{self, PrInAction, PrOutAction, PrType, hex};
use crate::parse::ReservationStatus;
use crate::parse::{self, Capabilities, FullStatus, Inquiry, Keys, LuId, ParseError};
use crate::path::{self, PathError, PathInfo, Resolved, SysRoot};
use crate::sense::Outcome;
use crate::sys::{self, Completion, DataDir, SgChannel, SysError};

/// Tunables for command execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Upper bound of one command's timeout.
    pub cmd_timeout: Duration,
    /// How many times a command that got UNIT ATTENTION is re-sent.
    pub ua_retries: u32,
    /// Use `/dev/sgN` when it exists (deadline-bounded); `false` forces `SG_IO` on `/dev/sdX`.
    pub prefer_sg: bool,
    /// Read VPD page 0x83 of a device with a single path too (several paths are always
    /// compared); `false` saves one command per open when the identity is not shown.
    pub identify_single: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            cmd_timeout: Duration::from_secs(5),
            ua_retries: 3,
            prefer_sg: true,
            identify_single: true,
        }
    }
}

/// A failed operation on a device.
#[derive(Debug)]
pub enum Error {
    /// The device name is unusable (nothing was sent).
    Path(PathError),
    /// Opening a device node failed.
    Open {
        /// The device node.
        dev: PathBuf,
        /// The error of open(2).
        errno: Errno,
    },
    /// The system call carrying a command failed.
    Io {
        /// The path's block device.
        dev: PathBuf,
        /// The command's name.
        cmd: &'static str,
        /// The error of the system call.
        errno: Errno,
    },
    /// The deadline passed before or while the command ran.
    Deadline {
        /// The path's block device.
        dev: PathBuf,
        /// The command's name.
        cmd: &'static str,
    },
    /// The command completed with a non-GOOD outcome.
    Failed {
        /// The path's block device.
        dev: PathBuf,
        /// The command's name.
        cmd: &'static str,
        /// What the device or transport said.
        outcome: Outcome,
    },
    /// The response could not be parsed.
    Parse {
        /// The path's block device.
        dev: PathBuf,
        /// The command's name.
        cmd: &'static str,
        /// What is wrong with the response.
        err: ParseError,
    },
    /// Two paths of one device name report different logical units.
    DifferentLu {
        /// The device name as given.
        input: PathBuf,
        /// The first path and its LU.
        first: Box<(String, LuId)>,
        /// A path reporting another LU.
        other: Box<(String, LuId)>,
    },
    /// No path of the device answered.
    NoWorkingPath {
        /// The device name as given.
        input: PathBuf,
        /// The last path's error.
        last: Box<Error>,
    },
}

impl Error {
    /// The device outcome, when the command completed.
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            Error::Failed { outcome, .. } => Some(*outcome),
            Error::NoWorkingPath { last, .. } => last.outcome(),
            _ => None,
        }
    }

    /// Whether the device answered RESERVATION CONFLICT.
    pub fn is_conflict(&self) -> bool {
        self.outcome() == Some(Outcome::ReservationConflict)
    }

    /// Whether the device said it does not implement the command.
    pub fn is_unsupported(&self) -> bool {
        self.outcome().is_some_and(|o| o.is_unsupported())
    }

    /// Whether the error is about the input (nothing was sent to a disk).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::Path(_) | Error::DifferentLu { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Path(e) => write!(f, "{e}"),
            Error::Open { dev, errno } => write!(f, "{}: cannot open: {errno}", dev.display()),
            Error::Io { dev, cmd, errno } => {
                write!(f, "{}: {cmd} could not be sent: {errno}", dev.display())
            }
            Error::Deadline { dev, cmd } => {
                write!(f, "{}: {cmd}: no answer before the deadline", dev.display())
            }
            Error::Failed { dev, cmd, outcome } => {
                write!(f, "{}: {cmd} failed: {outcome}", dev.display())
            }
            Error::Parse { dev, cmd, err } => write!(f, "{}: {cmd}: {err}", dev.display()),
            Error::DifferentLu {
                input,
                first,
                other,
            } => write!(
                f,
                "{}: paths are different logical units ({} is {}, {} is {}); check the multipath configuration",
                input.display(),
                first.0,
                first.1,
                other.0,
                other.1
            ),
            Error::NoWorkingPath { input, last } => {
                write!(
                    f,
                    "{}: no path answers (last error: {last})",
                    input.display()
                )
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<PathError> for Error {
    fn from(e: PathError) -> Error {
        Error::Path(e)
    }
}

enum Handle {
    Sg(SgChannel),
    Block(OwnedFd),
}

/// One SCSI path (I_T nexus) of a logical unit.
pub struct ScsiPath {
    /// Where the path is in sysfs and /dev.
    pub info: PathInfo,
    /// The node commands go through (`/dev/sgN` or `/dev/sdX`).
    pub node: PathBuf,
    handle: Handle,
    opts: Options,
}

impl fmt::Debug for ScsiPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScsiPath")
            .field("info", &self.info)
            .field("node", &self.node)
            .finish()
    }
}

fn open_node(p: &Path, write: bool) -> Result<OwnedFd, Errno> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(p)
        .map(OwnedFd::from)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

/// Result of PR OUT and other commands without data-in.
type Done = Result<(), Error>;

impl ScsiPath {
    /// Opens a path: `/dev/sgN` read-write when available and preferred, else `/dev/sdX`
    /// read-only.
    pub fn open(info: PathInfo, opts: Options) -> Result<ScsiPath, Error> {
        if opts.prefer_sg
            && let Some(sg) = &info.sg
            && let Ok(fd) = open_node(sg, true)
        {
            return Ok(ScsiPath {
                node: sg.clone(),
                info,
                handle: Handle::Sg(SgChannel::new(fd)),
                opts,
            });
        }
        let fd = open_node(&info.dev, false).map_err(|errno| Error::Open {
            dev: info.dev.clone(),
            errno,
        })?;
        Ok(ScsiPath {
            node: info.dev.clone(),
            info,
            handle: Handle::Block(fd),
            opts,
        })
    }

    fn run(
        &mut self,
        cmd: &'static str,
        cdb: &[u8],
        mut data_in: Option<&mut [u8]>,
        data_out: Option<&[u8]>,
        deadline: Instant,
    ) -> Result<(Outcome, Completion), Error> {
        let dev = &self.info.dev;
        let mut attempt = 0;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Deadline {
                    dev: dev.clone(),
                    cmd,
                });
            }
            let timeout = self.opts.cmd_timeout.min(deadline - now);
            let data = match (data_in.as_deref_mut(), data_out) {
                (Some(b), _) => DataDir::FromDevice(b),
                (None, Some(b)) => DataDir::ToDevice(b),
                (None, None) => DataDir::None,
            };
            debug!(
                "{}: {cmd}: cdb [{}]{}",
                self.node.display(),
                hex(cdb),
                data_out.map_or(String::new(), |b| format!(" data-out [{}]", hex(b)))
            );
            // A command the kernel has not finished a second after its own timeout is not
            // going to be answered in time: give up on this path rather than on the action.
            let cmd_deadline = deadline.min(now + timeout + Duration::from_secs(1));
            let r = match &mut self.handle {
                Handle::Sg(ch) => ch.execute(cdb, data, timeout, cmd_deadline),
                Handle::Block(fd) => sys::sg_io(fd.as_fd(), cdb, data, timeout),
            };
            let c = match r {
                Ok(c) => c,
                Err(SysError::Deadline | SysError::Closed) => {
                    return Err(Error::Deadline {
                        dev: dev.clone(),
                        cmd,
                    });
                }
                Err(SysError::Os(errno)) => {
                    return Err(Error::Io {
                        dev: dev.clone(),
                        cmd,
                        errno,
                    });
                }
                Err(SysError::BadRequest) => {
                    return Err(Error::Io {
                        dev: dev.clone(),
                        cmd,
                        errno: Errno::EINVAL,
                    });
                }
            };
            let outcome = Outcome::classify(&c);
            debug!(
                "{}: {cmd}: status 0x{:02x} host 0x{:02x} driver 0x{:02x} sense [{}] resid {} in {} ms: {outcome}",
                self.node.display(),
                c.status,
                c.host_status,
                c.driver_status,
                hex(&c.sense),
                c.resid,
                c.duration_ms
            );
            if let Outcome::UnitAttention(s) = outcome
                && attempt < self.opts.ua_retries
            {
                attempt += 1;
                info!(
                    "{}: {cmd}: unit attention ({s}), retrying ({attempt}/{})",
                    dev.display(),
                    self.opts.ua_retries
                );
                continue;
            }
            return Ok((outcome, c));
        }
    }

    fn run_ok(
        &mut self,
        cmd: &'static str,
        cdb: &[u8],
        data_in: Option<&mut [u8]>,
        data_out: Option<&[u8]>,
        deadline: Instant,
    ) -> Result<Completion, Error> {
        let (outcome, c) = self.run(cmd, cdb, data_in, data_out, deadline)?;
        if outcome.is_good() {
            Ok(c)
        } else {
            Err(Error::Failed {
                dev: self.info.dev.clone(),
                cmd,
                outcome,
            })
        }
    }

    fn data_in(
        &mut self,
        cmd: &'static str,
        cdb: &[u8],
        len: usize,
        deadline: Instant,
    ) -> Result<Vec<u8>, Error> {
        let mut buf = vec![0u8; len];
        let c = self.run_ok(cmd, cdb, Some(&mut buf), None, deadline)?;
        let got = len.saturating_sub(usize::try_from(c.resid.max(0)).unwrap_or(0));
        buf.truncate(got);
        debug!(
            "{}: {cmd}: data-in [{}]",
            self.node.display(),
            hex(&buf[..got.min(128)])
        );
        Ok(buf)
    }

    fn parse_err(&self, cmd: &'static str) -> impl Fn(ParseError) -> Error + '_ {
        move |err| Error::Parse {
            dev: self.info.dev.clone(),
            cmd,
            err,
        }
    }

    /// `TEST UNIT READY`: returns the raw outcome (NOT READY is an answer, not an error).
    pub fn test_unit_ready(&mut self, deadline: Instant) -> Result<Outcome, Error> {
        Ok(self
            .run(
                "TEST UNIT READY",
                &cdb::test_unit_ready(),
                None,
                None,
                deadline,
            )?
            .0)
    }

    /// `INQUIRY` — standard data.
    pub fn inquiry(&mut self, deadline: Instant) -> Result<Inquiry, Error> {
        let b = self.data_in("INQUIRY", &cdb::inquiry(None, 96), 96, deadline)?;
        parse::inquiry(&b).map_err(self.parse_err("INQUIRY"))
    }

    /// `INQUIRY` VPD page 0x80 — unit serial number.
    pub fn serial(&mut self, deadline: Instant) -> Result<String, Error> {
        let cmd = "INQUIRY VPD 0x80";
        let b = self.data_in(cmd, &cdb::inquiry(Some(0x80), 252), 252, deadline)?;
        parse::vpd_serial(&b).map_err(self.parse_err(cmd))
    }

    /// `INQUIRY` VPD page 0x83 — the logical unit's designator.
    pub fn lu_id(&mut self, deadline: Instant) -> Result<LuId, Error> {
        let cmd = "INQUIRY VPD 0x83";
        let b = self.data_in(cmd, &cdb::inquiry(Some(0x83), 1024), 1024, deadline)?;
        parse::vpd_lu_id(&b).map_err(self.parse_err(cmd))
    }

    fn pr_in(&mut self, action: PrInAction, len: u16, deadline: Instant) -> Result<Vec<u8>, Error> {
        self.data_in(
            action.name(),
            &cdb::pr_in(action, len),
            usize::from(len),
            deadline,
        )
    }

    /// `PERSISTENT RESERVE IN / READ KEYS`.
    pub fn read_keys(&mut self, deadline: Instant) -> Result<Keys, Error> {
        let b = self.pr_in(PrInAction::ReadKeys, 8192, deadline)?;
        parse::read_keys(&b).map_err(self.parse_err("READ KEYS"))
    }

    /// `PERSISTENT RESERVE IN / READ RESERVATION`.
    pub fn read_reservation(&mut self, deadline: Instant) -> Result<ReservationStatus, Error> {
        let b = self.pr_in(PrInAction::ReadReservation, 24, deadline)?;
        parse::read_reservation(&b).map_err(self.parse_err("READ RESERVATION"))
    }

    /// `PERSISTENT RESERVE IN / REPORT CAPABILITIES`.
    pub fn report_capabilities(&mut self, deadline: Instant) -> Result<Capabilities, Error> {
        let b = self.pr_in(PrInAction::ReportCapabilities, 8, deadline)?;
        parse::report_capabilities(&b).map_err(self.parse_err("REPORT CAPABILITIES"))
    }

    /// `PERSISTENT RESERVE IN / READ FULL STATUS`.
    pub fn read_full_status(&mut self, deadline: Instant) -> Result<FullStatus, Error> {
        let b = self.pr_in(PrInAction::ReadFullStatus, 8192, deadline)?;
        parse::read_full_status(&b).map_err(self.parse_err("READ FULL STATUS"))
    }

    /// `PERSISTENT RESERVE OUT` with the basic parameter list.
    pub fn pr_out(
        &mut self,
        action: PrOutAction,
        pr_type: Option<PrType>,
        key: u64,
        sa_key: u64,
        deadline: Instant,
    ) -> Done {
        let params = cdb::pr_out_params(key, sa_key);
        self.run_ok(
            action.name(),
            &cdb::pr_out(action, pr_type),
            None,
            Some(&params),
            deadline,
        )
        .map(|_| ())
    }

    /// `REGISTER`: `old` is the key this nexus has now (0 if none), `new` the one it gets
    /// (0 unregisters). Conflicts when `old` does not match the registration.
    pub fn register(&mut self, old: u64, new: u64, deadline: Instant) -> Done {
        self.pr_out(PrOutAction::Register, None, old, new, deadline)
    }

    /// `REGISTER AND IGNORE EXISTING KEY`: this nexus gets `new`, whatever it had.
    pub fn register_ignore(&mut self, new: u64, deadline: Instant) -> Done {
        self.pr_out(
            PrOutAction::RegisterAndIgnoreExistingKey,
            None,
            0,
            new,
            deadline,
        )
    }

    /// `RESERVE` with our registered `key`.
    pub fn reserve(&mut self, key: u64, t: PrType, deadline: Instant) -> Done {
        self.pr_out(PrOutAction::Reserve, Some(t), key, 0, deadline)
    }

    /// `RELEASE` with our registered `key` and the type of the reservation held.
    pub fn release(&mut self, key: u64, t: PrType, deadline: Instant) -> Done {
        self.pr_out(PrOutAction::Release, Some(t), key, 0, deadline)
    }

    /// `CLEAR`: drops every registration and the reservation.
    pub fn clear(&mut self, key: u64, deadline: Instant) -> Done {
        self.pr_out(PrOutAction::Clear, None, key, 0, deadline)
    }

    /// `PREEMPT`: removes `victim`'s registrations (and its reservation, taking it as `t`).
    pub fn preempt(&mut self, key: u64, victim: u64, t: PrType, deadline: Instant) -> Done {
        self.pr_out(PrOutAction::Preempt, Some(t), key, victim, deadline)
    }

    /// `PREEMPT AND ABORT`: as PREEMPT, and aborts the victim's queued commands.
    pub fn preempt_abort(&mut self, key: u64, victim: u64, t: PrType, deadline: Instant) -> Done {
        self.pr_out(PrOutAction::PreemptAndAbort, Some(t), key, victim, deadline)
    }
}

/// A path that did not answer when the LU was opened.
#[derive(Debug)]
pub struct DeadPath {
    /// The path.
    pub info: PathInfo,
    /// Why it did not answer.
    pub error: Error,
}

/// A logical unit and its paths, all confirmed to report the same VPD 0x83 designator.
#[derive(Debug)]
pub struct Lu {
    /// The resolved device name.
    pub resolved: Resolved,
    /// The LU designator.
    pub id: LuId,
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

    /// Opens the paths of an already resolved device.
    pub fn open_resolved(
        resolved: Resolved,
        opts: Options,
        deadline: Instant,
    ) -> Result<Lu, Error> {
        let mut paths = Vec::new();
        let mut dead = Vec::new();
        let mut id: Option<(String, LuId)> = None;
        for info in &resolved.paths {
            let single = resolved.paths.len() == 1;
            let unnamed = || LuId {
                kind: 0xff,
                bytes: info.name.as_bytes().to_vec(),
            };
            let opened = ScsiPath::open(info.clone(), opts).and_then(|mut p| {
                if single && !opts.identify_single {
                    return Ok((p, unnamed()));
                }
                let lid = match p.lu_id(deadline) {
                    Ok(l) => l,
                    // One path has nothing to be compared with: a disk without a usable
                    // designator is still usable, known by its name.
                    Err(Error::Parse { .. }) if single => unnamed(),
                    Err(e) if single && e.is_unsupported() => unnamed(),
                    Err(e) => return Err(e),
                };
                Ok((p, lid))
            });
            match opened {
                Ok((p, lid)) => {
                    match &id {
                        None => id = Some((info.name.clone(), lid)),
                        Some(first) if first.1 != lid => {
                            return Err(Error::DifferentLu {
                                input: resolved.input.clone(),
                                first: Box::new(first.clone()),
                                other: Box::new((info.name.clone(), lid)),
                            });
                        }
                        Some(_) => {}
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
            Some((_, id)) => Ok(Lu {
                resolved,
                id,
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
        Error::Failed { outcome, .. } => matches!(
            outcome,
            Outcome::Transport { .. } | Outcome::TimedOut | Outcome::NotReady(_)
        ),
        _ => false,
    }
}
