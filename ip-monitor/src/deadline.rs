//! Deadlines: every wait in this crate is bounded by one of these, so no lost packet and no
//! silent netlink socket can make a caller block past the time it was given.

use std::time::{Duration, Instant};

/// A point in time after which an operation must give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    /// The deadline `d` from now.
    pub fn after(d: Duration) -> Self {
        Deadline(Instant::now() + d)
    }

    /// The deadline at `instant`.
    pub fn at(instant: Instant) -> Self {
        Deadline(instant)
    }

    /// The instant itself.
    pub fn instant(self) -> Instant {
        self.0
    }

    /// Time left, zero once passed.
    pub fn remaining(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Whether the deadline has passed.
    pub fn expired(self) -> bool {
        Instant::now() >= self.0
    }

    /// The earlier of `self` and `d` from now.
    pub fn min_after(self, d: Duration) -> Self {
        self.min(Deadline::after(d))
    }
}
