//! Deadlines: every action finishes, or fails, by a fixed instant.
//!
//! Kits pass [`Deadline::remaining`] down to every blocking call; the backstop that answers at
//! the deadline even if some call ignored its budget is a [`Watchdog`] (a timer signal that
//! makes the process say its last words and exit, with no extra thread) around each hook, or
//! [`run_bounded`] (a worker thread abandoned at the deadline) for a single call.

use std::io;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigEvent, SigSet, SigevNotify, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::time::TimeSpec;
use nix::sys::timer::{Expiration, Timer, TimerSetTimeFlags};
use nix::time::ClockId;

use crate::sys::{self, LastWords};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    start: Instant,
    end: Instant,
}

impl Deadline {
    pub fn after(budget: Duration) -> Deadline {
        let start = Instant::now();
        Deadline {
            start,
            end: start + budget,
        }
    }

    /// Time left, zero once passed.
    pub fn remaining(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }

    /// The smaller of `cap` and the time left.
    pub fn cap(&self, cap: Duration) -> Duration {
        self.remaining().min(cap)
    }

    pub fn expired(&self) -> bool {
        Instant::now() >= self.end
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The whole budget this deadline was made with.
    pub fn budget(&self) -> Duration {
        self.end - self.start
    }

    pub fn instant(&self) -> Instant {
        self.end
    }
}

/// Runs `f` on a worker thread and waits for it until `deadline`.
///
/// Returns `None` if the deadline passed first; the worker is then abandoned (it ends with
/// the process, which the caller is expected to exit soon).
pub fn run_bounded<T: Send + 'static>(
    deadline: Deadline,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("action".into())
        .spawn(move || {
            let _ = tx.send(f());
        });
    if spawned.is_err() {
        return None;
    }
    rx.recv_timeout(deadline.remaining()).ok()
}

/// An armed deadline for the whole process: at the deadline `SIGALRM` interrupts whatever the
/// calling thread is doing, writes the prepared last words and exits. A wait that only a fatal
/// signal ends (a `TASK_KILLABLE` sleep, such as I/O on a dead `hard` NFS mount, should one
/// ever happen outside the children made for it) holds the handler off; for that a second
/// timer sends `SIGKILL` [`KILL_GRACE`] later, so the hook still ends, by signal 9. Dropping
/// the watchdog disarms both. Cheaper than [`run_bounded`] (no thread), which matters for hooks
/// run every few seconds; armed at most once per process.
#[derive(Debug)]
pub(crate) struct Watchdog {
    _timers: [Timer; 2],
}

/// How long after the deadline the `SIGKILL` backstop fires.
pub const KILL_GRACE: Duration = Duration::from_secs(1);

fn timer(signal: Signal, after: Duration) -> io::Result<Timer> {
    let mut timer = Timer::new(
        ClockId::CLOCK_MONOTONIC,
        SigEvent::new(SigevNotify::SigevSignal {
            signal,
            si_value: 0,
        }),
    )?;
    // a zero expiration would disarm the timer instead of firing at once
    let after = after.max(Duration::from_micros(1));
    timer.set(
        Expiration::OneShot(TimeSpec::from_duration(after)),
        TimerSetTimeFlags::empty(),
    )?;
    Ok(timer)
}

impl Watchdog {
    pub(crate) fn arm(deadline: Deadline, words: LastWords) -> io::Result<Watchdog> {
        sys::install_last_words(words)?;
        // LifeKeeper (or a shell) may hand us a mask that blocks SIGALRM: the watchdog must fire.
        let mut set = SigSet::empty();
        set.add(Signal::SIGALRM);
        pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None)?;
        let left = deadline.remaining();
        let kill = timer(Signal::SIGKILL, left + KILL_GRACE)?;
        Ok(Watchdog {
            _timers: [timer(Signal::SIGALRM, left)?, kill],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_result_before_deadline() {
        assert_eq!(
            run_bounded(Deadline::after(Duration::from_secs(5)), || 7),
            Some(7)
        );
    }

    #[test]
    fn abandons_work_past_deadline() {
        let d = Deadline::after(Duration::from_millis(50));
        let (_keep, rx) = mpsc::channel::<()>();
        let r = run_bounded(d, move || {
            let _ = rx.recv();
            1
        });
        assert_eq!(r, None);
        assert!(d.expired());
        assert_eq!(d.remaining(), Duration::ZERO);
    }
}
