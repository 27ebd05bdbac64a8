//! The grace evaluator: a failure counts only once it has persisted for a grace period.
//!
//! A live migration pauses a Hyper-V guest for up to about a second; a check that fails on
//! one lost round would fail over a healthy resource. So after a failed round we probe
//! again, and report failure only when every round for at least `grace` has failed — or when
//! the overall deadline leaves no room to look again. Any passing round ends the evaluation
//! as healthy. The clock is injected so the logic is tested without sleeping.

use std::time::{Duration, Instant};

/// Time source, so tests can drive the evaluator without waiting.
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Instant;
    /// Wait `d`.
    fn sleep(&self, d: Duration);
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// The result of one probe round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round<F> {
    /// Healthy.
    Pass,
    /// Failed, with what went wrong.
    Fail(F),
}

/// What the evaluation concluded after the grace period (the kit turns it into its verdict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evaluation<F> {
    /// A round passed; `failed_rounds` earlier rounds had failed (a transient blip).
    Healthy {
        /// Failed rounds seen before the passing one.
        failed_rounds: u32,
    },
    /// Every round failed for at least the grace period (or until the deadline).
    Failed {
        /// The last round's failure.
        last: F,
        /// Rounds run.
        rounds: u32,
        /// How long the failure was observed.
        persisted: Duration,
        /// `true` when the deadline ended the evaluation before `grace` had elapsed.
        cut_short: bool,
    },
}

/// Run `round` (given the time it may take) until it passes, or until its failures have
/// persisted for `grace`, or `deadline` leaves less than `min_round` for another round.
/// Consecutive rounds start at least `min_round` apart, so an instant failure (e.g. "network
/// unreachable") does not spin.
pub fn evaluate<F, C: Clock>(
    clock: &C,
    grace: Duration,
    deadline: Instant,
    min_round: Duration,
    mut round: impl FnMut(Instant) -> Round<F>,
) -> Evaluation<F> {
    let mut failed_since: Option<Instant> = None;
    let mut rounds = 0u32;
    loop {
        let started = clock.now();
        rounds += 1;
        match round(deadline) {
            Round::Pass => {
                return Evaluation::Healthy {
                    failed_rounds: rounds - 1,
                };
            }
            Round::Fail(f) => {
                let since = *failed_since.get_or_insert(started);
                let now = clock.now();
                let persisted = now.saturating_duration_since(since);
                let next = (started + min_round).max(now);
                let no_room = next + min_round > deadline;
                if persisted >= grace || no_room {
                    return Evaluation::Failed {
                        last: f,
                        rounds,
                        persisted,
                        cut_short: persisted < grace,
                    };
                }
                if next > now {
                    clock.sleep(next - now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct Fake {
        t0: Instant,
        t: Cell<Duration>,
    }
    impl Fake {
        fn new() -> Self {
            Fake {
                t0: Instant::now(),
                t: Cell::new(Duration::ZERO),
            }
        }
        fn advance(&self, d: Duration) {
            self.t.set(self.t.get() + d);
        }
        fn at(&self) -> Duration {
            self.t.get()
        }
    }
    impl Clock for Fake {
        fn now(&self) -> Instant {
            self.t0 + self.t.get()
        }
        fn sleep(&self, d: Duration) {
            self.advance(d);
        }
    }

    const S: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    /// A link that is dark during [from, to): a round of `len` passes if any part of it is
    /// outside the dark window (a reply gets through), else fails after `len`.
    fn blackout(c: &Fake, from: Duration, to: Duration, len: Duration) -> Round<&'static str> {
        let start = c.at();
        if start < from {
            c.advance(MS);
            return Round::Pass;
        }
        if start + len <= to {
            c.advance(len);
            return Round::Fail("no answer");
        }
        c.advance(to.saturating_sub(start) + MS);
        Round::Pass
    }

    #[test]
    fn passes_at_once_when_healthy() {
        let c = Fake::new();
        let v = evaluate(&c, 3 * S, c.now() + 12 * S, S, |_| {
            blackout(&c, 100 * S, 100 * S, S)
        });
        assert_eq!(v, Evaluation::Healthy { failed_rounds: 0 });
    }

    #[test]
    fn one_second_pause_does_not_fail() {
        // Rounds of 1 s; the pause starts with the check and lasts a second.
        let c = Fake::new();
        let v = evaluate(&c, 3 * S, c.now() + 12 * S, S, |_| {
            blackout(&c, Duration::ZERO, S + 500 * MS, S)
        });
        assert_eq!(v, Evaluation::Healthy { failed_rounds: 1 });
    }

    #[test]
    fn persistent_failure_fails_after_grace_within_deadline() {
        let c = Fake::new();
        let v = evaluate(&c, 3 * S, c.now() + 12 * S, S, |_| {
            blackout(&c, Duration::ZERO, 100 * S, S)
        });
        match v {
            Evaluation::Failed {
                rounds,
                persisted,
                cut_short,
                ..
            } => {
                assert_eq!(rounds, 3);
                assert!(persisted >= 3 * S);
                assert!(!cut_short);
            }
            other => panic!("{other:?}"),
        }
        assert!(c.at() <= 12 * S);
    }

    #[test]
    fn deadline_cuts_grace_short() {
        let c = Fake::new();
        let v = evaluate(&c, 10 * S, c.now() + 4 * S, S, |_| {
            blackout(&c, Duration::ZERO, 100 * S, S)
        });
        assert!(matches!(
            v,
            Evaluation::Failed {
                cut_short: true,
                ..
            }
        ));
        assert!(c.at() <= 4 * S);
    }

    #[test]
    fn instant_failures_are_paced() {
        let c = Fake::new();
        let mut n = 0;
        let v = evaluate(&c, 3 * S, c.now() + 12 * S, S, |_| {
            n += 1;
            Round::Fail("unreachable")
        });
        assert!(matches!(v, Evaluation::Failed { .. }));
        assert_eq!(n, 4); // at 0, 1, 2 and 3 s
    }
}
