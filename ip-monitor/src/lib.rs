//! Virtual IP management and monitoring past the virtual switch.
//!
//! A Hyper-V guest's synthetic NIC keeps its carrier when the host's physical uplink dies,
//! and other VMs on the same host keep answering on the virtual switch, so "address present
//! and link up" proves little. This crate provides the mechanism to prove more:
//!
//! - [`netlink`]: list links, addresses and routes, add and delete addresses (raw rtnetlink);
//! - [`arp`]: ARP requests, RFC 5227 probes (duplicate detection) and announcements over an
//!   `AF_PACKET` socket;
//! - [`icmp`]: ICMP and ICMPv6 echo over raw sockets;
//! - [`ndp`]: IPv6 unsolicited neighbour advertisements and duplicate address detection probes;
//! - [`probe`]: ask several targets at once, by ARP and/or ICMP, for a bounded time;
//! - [`grace`]: a failure counts only once it has persisted for a grace period.
//!
//! Every wait is bounded by a deadline, an [`Instant`](std::time::Instant) the caller passes
//! down, so no lost packet and no silent netlink socket can make a caller block past the
//! time it was given. The crate never prints and never exits: it returns [`Error`]s and
//! results, and the kit binary decides what they mean. Socket calls go through nix's safe
//! wrappers (private `sock` module); the one `unsafe` block is in the private `sys` module.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

pub mod arp;
pub mod cidr;
pub mod grace;
pub mod icmp;
pub mod ndp;
pub mod netlink;
pub mod probe;
mod sock;
mod sys;

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

pub use cidr::{Cidr, CidrError};

/// Most packets a receive loop reads before it looks at its deadline again, so a flood of
/// unrelated traffic (an ARP storm, a busy IPv6 link) cannot hold it past that deadline.
pub(crate) const MAX_DRAIN: usize = 256;

/// Time left until `deadline`, zero once it has passed.
pub(crate) fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Whether `deadline` has passed.
pub(crate) fn expired(deadline: Instant) -> bool {
    Instant::now() >= deadline
}

/// What went wrong in this crate.
#[derive(Debug)]
pub enum Error {
    /// A system call failed.
    Io {
        /// What was being done.
        op: &'static str,
        /// The error the system call returned.
        source: io::Error,
    },
    /// The kernel refused a netlink request.
    Kernel {
        /// What was being done.
        op: String,
        /// The errno the kernel reported.
        source: io::Error,
    },
    /// No reply before the deadline.
    Timeout(&'static str),
    /// A reply we could not make sense of.
    Protocol(String),
}

impl Error {
    pub(crate) fn io(op: &'static str, source: io::Error) -> Self {
        Error::Io { op, source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, source } => write!(f, "cannot {op}: {source}"),
            Error::Kernel { op, source } => write!(f, "the kernel refused to {op}: {source}"),
            Error::Timeout(op) => write!(f, "no netlink reply in time to {op}"),
            Error::Protocol(m) => write!(f, "unexpected reply: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Kernel { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Format a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
