//! What can go wrong on a device, one variant per failed operation, with the fix in the
//! message.

use std::fmt;
use std::path::PathBuf;

use nix::errno::Errno;

use crate::parse::{LuId, ParseError};
use crate::path::PathError;
use crate::sense::Reply;

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
    /// The kernel does not run commands on the path's SCSI device (its sysfs state is
    /// offline, transport-offline or deleted); nothing was sent.
    NotRunning {
        /// The path's block device.
        dev: PathBuf,
        /// The state sysfs shows.
        state: String,
    },
    /// The command completed with a non-GOOD reply.
    Failed {
        /// The path's block device.
        dev: PathBuf,
        /// The command's name.
        cmd: &'static str,
        /// What the device or transport said.
        reply: Reply,
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
        /// Why they are not taken for one LU (see [`Identity::mismatch`]).
        reason: String,
    },
    /// The path has no usable SCSI generic node, so its commands could not be bounded by the
    /// deadline; nothing was sent.
    NoSgNode {
        /// The path's block device.
        dev: PathBuf,
        /// What is missing and how to fix it.
        reason: String,
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
    /// The device's reply, when the command completed.
    pub fn reply(&self) -> Option<Reply> {
        match self {
            Error::Failed { reply, .. } => Some(*reply),
            Error::NoWorkingPath { last, .. } => last.reply(),
            _ => None,
        }
    }

    /// Whether the device answered RESERVATION CONFLICT.
    pub fn is_conflict(&self) -> bool {
        self.reply() == Some(Reply::ReservationConflict)
    }

    /// Whether the device said it does not implement the command.
    pub fn is_unsupported(&self) -> bool {
        self.reply().is_some_and(|o| o.is_unsupported())
    }

    /// Whether the error is about the input (nothing was sent to a disk).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::Path(_) | Error::DifferentLu { .. })
    }

    /// Whether the error is about this node's setup (no sg node), not about a disk or path.
    pub fn is_no_sg_node(&self) -> bool {
        match self {
            Error::NoSgNode { .. } => true,
            Error::NoWorkingPath { last, .. } => last.is_no_sg_node(),
            _ => false,
        }
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
            Error::NotRunning { dev, state } => write!(
                f,
                "{}: the SCSI device is {state} (the kernel sends it no command)",
                dev.display()
            ),
            Error::Failed { dev, cmd, reply } => {
                write!(f, "{}: {cmd} failed: {reply}", dev.display())
            }
            Error::Parse { dev, cmd, err } => write!(f, "{}: {cmd}: {err}", dev.display()),
            Error::DifferentLu {
                input,
                first,
                other,
                reason,
            } => write!(
                f,
                "{}: paths are different logical units ({} is {}, {} is {}: {reason}); check the multipath configuration",
                input.display(),
                first.0,
                first.1,
                other.0,
                other.1
            ),
            Error::NoSgNode { dev, reason } => write!(
                f,
                "{}: no usable SCSI generic (sg) node, so commands could not be bounded by the deadline: {reason}",
                dev.display()
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
