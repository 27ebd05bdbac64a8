//! The one exit-code table of every lkhelpers binary, and the failure type that carries a code.
//!
//! LifeKeeper only distinguishes zero from non-zero; the finer codes tell an admin running a
//! hook by hand (and our own `watch` loops) what kind of non-zero it was.

use std::fmt;

/// Exit codes, defined once. `ARCHITECTURE.md` and `--help` document the same table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exit {
    /// 0: done / healthy. LifeKeeper marks the resource ISP (restore) or keeps it (quickCheck).
    Ok = 0,
    /// 1: failed. After quickCheck LifeKeeper runs `recover`; after `recover` it fails over;
    /// after `restore` the resource goes OSF and LifeKeeper tries the next server.
    Failed = 1,
    /// 2: usage or configuration error; nothing was changed. LifeKeeper treats it as a failure,
    /// so fix the configuration before the next check.
    Usage = 2,
    /// 3: fenced: another node owns the resource (e.g. holds the reservation). This node must not
    /// recover locally; LifeKeeper sees a failure and the watcher stops the node per its policy.
    Fenced = 3,
}

impl Exit {
    /// The numeric process exit status.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Every code, in order, for help texts and tests.
    pub const ALL: [Exit; 4] = [Exit::Ok, Exit::Failed, Exit::Usage, Exit::Fenced];

    /// One line saying what the code means and what LifeKeeper does with it.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "done / healthy (restore: resource ISP; quickCheck: nothing to do)",
            Exit::Failed => {
                "failed (quickCheck: LifeKeeper runs recover; recover: LifeKeeper fails over; \
                 restore: resource OSF, next server tried)"
            }
            Exit::Usage => {
                "usage or configuration error, nothing changed (LifeKeeper sees a failure: fix \
                 the configuration named in the message)"
            }
            Exit::Fenced => {
                "fenced: another node owns the resource; this node must not recover locally \
                 (LifeKeeper sees a failure; local recovery will not help)"
            }
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

/// A failure with its exit code and a one-line message naming the object, what went wrong and
/// what to do.
/// What a failure says beyond its exit code, for callers with finer codes than LifeKeeper's
/// (Pacemaker's OCF codes): the resource is simply not active here, or something this node
/// lacks (a device, an interface) is missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Hint {
    #[default]
    None,
    /// Not active on this node at all (quickCheck of a resource never restored here).
    NotRunning,
    /// A device, interface or file the configuration names does not exist on this node.
    MissingHere,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
    pub hint: Hint,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure {
            exit,
            message: message.into(),
            hint: Hint::None,
        }
    }
    /// The same failure, marked as "not active on this node".
    pub fn not_running(mut self) -> Self {
        self.hint = Hint::NotRunning;
        self
    }
    /// The same failure, marked as "something named is missing on this node".
    pub fn missing_here(mut self) -> Self {
        self.hint = Hint::MissingHere;
        self
    }
    /// Exit 1: the resource is not healthy / the action did not succeed.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(Exit::Failed, message)
    }
    /// Exit 2: bad usage or configuration; nothing changed.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }
    /// Exit 3: another node owns the resource.
    pub fn fenced(message: impl Into<String>) -> Self {
        Self::new(Exit::Fenced, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// What a hook returns: on success a one-line summary that is logged at info level.
pub type Outcome = Result<String, Failure>;
