//! NFS client mounts whose checks can never hang: the mechanism behind the
//! `lkh-nas` LifeKeeper kit.
//!
//! A `hard` NFS mount whose server has gone away blocks every process that
//! touches it, so nothing here touches the mount from the calling process:
//! - [`mountinfo`] answers "is it mounted, from where, how" from
//!   `/proc/self/mountinfo` alone;
//! - [`probe`] asks the server over the network (portmapper, MOUNT, NFS
//!   NULL/GETATTR for v3; NFS NULL and COMPOUND for v4) with one deadline;
//! - [`child`] runs the calls that do touch the mount (`stat`, `mount(2)`,
//!   `umount2(2)`) in forked children abandoned at their deadline;
//! - [`users`] finds the processes holding a mount through pinned `/proc`
//!   directories, by mount namespace and mount id;
//! - [`ops`] combines them into bounded mount and unmount (each unmount aimed
//!   at one mount by identity, never steered by a path a user can change);
//! - [`options`] validates the configuration and builds the kernel's text
//!   options (there is no `mount.nfs` in the loop).
//!
//! The library never prints or exits; details go to the `log` facade.

#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

pub mod child;
pub mod mountinfo;
pub mod net;
pub mod ops;
pub mod options;
pub mod probe;
mod sys;
pub mod users;

pub use child::{IoCheck, IoOutcome};
pub use options::{ConfigError, NfsConfig, Version};

use std::fmt;

/// Broad class of a failure, for the caller's exit-code policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Invalid configuration or input; nothing was changed.
    Config,
    /// A deadline passed (server not answering, mount wedged).
    Timeout,
    /// Anything else that went wrong.
    Failed,
}

/// A failure with a one-line message naming the object and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub msg: String,
}

impl Error {
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        Error {
            kind,
            msg: msg.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::new(ErrorKind::Config, e.0)
    }
}

/// A small deterministic generator (xorshift64) for the random-input tests.
#[cfg(test)]
pub(crate) fn test_rng(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// Runs the test `name` of this test binary again, alone, under `wrapper` (a command and its
/// arguments, e.g. `unshare -m` or `env --ignore-signal=CHLD`) with `inner` set in its
/// environment, and asserts that it passed there; the test tells the two runs apart by `inner`.
#[cfg(test)]
pub(crate) fn rerun_test_under(wrapper: &[&str], name: &str, inner: &str) {
    let out = std::process::Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(inner, "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}
