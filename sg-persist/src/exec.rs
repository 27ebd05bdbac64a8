//! A small single-threaded executor for the crate's asynchronous commands: every command of
//! every path is a future ([`crate::ScsiPath`]'s methods), and [`block_on`] runs any number
//! of them at once on the calling thread, so that a check of a hundred LUs has a hundred
//! commands in flight and each LU moves to its next step as soon as its own answer is there.
//!
//! No thread is started (a thread costs more than a SCSI command under emulation, and one
//! blocked in the kernel keeps the process alive past its deadline). While every future
//! waits, [`block_on`] sleeps in one `epoll_wait(2)` on the sg descriptors that have a
//! command in flight, until the first completion or the earliest deadline any future asked
//! for ([`want`]); then it polls the futures again, and a command future reads its
//! completion only when its descriptor was reported readable (no read per idle path).
//! [`join_all`] runs several futures side by side; [`sleep_until`] and [`yield_now`] wait
//! without blocking the others. The waker is a no-op: every round polls every future that
//! has not finished, which costs little next to a system call.

use std::cell::RefCell;
use std::future::Future;
use std::os::fd::{AsFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

/// What the futures of one round asked to wait for, and what the last wait found ready.
#[derive(Default)]
struct Round {
    /// The earliest instant a waiting future must be polled again (its deadline, a sleep).
    until: Option<Instant>,
    /// Descriptors reported readable by the last wait.
    ready: Vec<RawFd>,
}

struct Poller {
    epoll: Epoll,
    /// Tells this epoll instance from earlier ones (see [`Registration`]).
    id: u64,
}

thread_local! {
    static ROUND: RefCell<Round> = RefCell::new(Round::default());
    static POLLER: RefCell<Option<Poller>> = const { RefCell::new(None) };
}

static NEXT_POLLER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Which epoll instance a descriptor was added to (a channel may move to another thread, whose
/// instance does not know it yet).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Registration(u64);

/// Asks the executor to poll the calling future again by `until` at the latest, and when `fd`
/// (a descriptor with a command in flight, added with [`watch`]) becomes readable.
pub fn want(until: Instant) {
    ROUND.with(|r| {
        let mut r = r.borrow_mut();
        r.until = Some(r.until.map_or(until, |u| u.min(until)));
    });
}

/// Whether the last wait reported `fd` readable.
pub fn is_ready(fd: RawFd) -> bool {
    ROUND.with(|r| r.borrow().ready.contains(&fd))
}

/// Adds `fd` to this thread's epoll instance unless `reg` says it is there already; returns
/// the registration to keep with the descriptor. The descriptor leaves the instance by itself
/// when it is closed.
pub fn watch(fd: impl AsFd, reg: Registration) -> Result<Registration, Errno> {
    POLLER.with(|p| {
        let mut p = p.borrow_mut();
        if p.is_none() {
            let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
            let id = NEXT_POLLER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            *p = Some(Poller { epoll, id });
        }
        let p = p.as_ref().expect("made above");
        if reg.0 == p.id {
            return Ok(reg);
        }
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd.as_fd());
        let ev = EpollEvent::new(EpollFlags::EPOLLIN, u64::try_from(raw).unwrap_or(0));
        match p.epoll.add(&fd, ev) {
            Ok(()) | Err(Errno::EEXIST) => Ok(Registration(p.id)),
            Err(e) => Err(e),
        }
    })
}

/// Waits for a descriptor to become readable or for `until`, whichever comes first.
fn wait(until: Option<Instant>) -> Vec<RawFd> {
    let timeout = match until {
        None => EpollTimeout::ZERO,
        Some(t) => {
            let left = t.saturating_duration_since(Instant::now());
            // rounded up: waking a little early would only spin
            let ms = left.as_micros().div_ceil(1000);
            EpollTimeout::try_from(u32::try_from(ms).unwrap_or(u32::MAX).min(i32::MAX as u32))
                .unwrap_or(EpollTimeout::MAX)
        }
    };
    POLLER.with(|p| {
        let p = p.borrow();
        let Some(p) = p.as_ref() else {
            // nothing was ever registered: only time to wait for
            if let Some(t) = until {
                std::thread::sleep(t.saturating_duration_since(Instant::now()));
            }
            return Vec::new();
        };
        let mut events = [EpollEvent::empty(); 64];
        match p.epoll.wait(&mut events, timeout) {
            Ok(n) => events[..n]
                .iter()
                .filter_map(|e| RawFd::try_from(e.data()).ok())
                .collect(),
            Err(_) => Vec::new(),
        }
    })
}

/// Runs `f` to its end on this thread, waiting in the kernel whenever every future waits.
/// May be called from inside a future (the unit tests' simulated disks do): the inner run
/// keeps the outer round's requests.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    let outer = ROUND.with(|r| std::mem::take(&mut *r.borrow_mut()));
    let out = loop {
        ROUND.with(|r| r.borrow_mut().until = None);
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            break v;
        }
        let until = ROUND.with(|r| r.borrow().until);
        let ready = wait(until);
        ROUND.with(|r| r.borrow_mut().ready = ready);
    };
    ROUND.with(|r| *r.borrow_mut() = outer);
    out
}

enum Slot<F: Future> {
    Running(Pin<Box<F>>),
    Done(F::Output),
    Taken,
}

/// Runs every future of `futs` side by side; their outputs in the same order.
pub async fn join_all<F: Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut slots: Vec<Slot<F>> = futs
        .into_iter()
        .map(|f| Slot::Running(Box::pin(f)))
        .collect();
    std::future::poll_fn(move |cx| {
        let mut all = true;
        for s in slots.iter_mut() {
            if let Slot::Running(f) = s {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *s = Slot::Done(v),
                    Poll::Pending => all = false,
                }
            }
        }
        if !all {
            return Poll::Pending;
        }
        Poll::Ready(
            slots
                .iter_mut()
                .filter_map(|s| match std::mem::replace(s, Slot::Taken) {
                    Slot::Done(v) => Some(v),
                    _ => None,
                })
                .collect(),
        )
    })
    .await
}

/// Runs two futures side by side.
pub async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(move |cx| {
        if ra.is_none()
            && let Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready((ra.take().expect("set"), rb.take().expect("set")))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Waits until `t` without holding up the other futures.
pub async fn sleep_until(t: Instant) {
    std::future::poll_fn(|_| {
        if Instant::now() >= t {
            Poll::Ready(())
        } else {
            want(t);
            Poll::Pending
        }
    })
    .await
}

/// Lets every other future of the round run once before this one goes on.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(move |_| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            want(Instant::now());
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::time::Duration;

    #[test]
    fn join_all_interleaves_and_keeps_the_order() {
        let log = RefCell::new(Vec::new());
        let out = block_on(join_all((0..3).map(|i| {
            let log = &log;
            async move {
                log.borrow_mut().push((i, 0));
                yield_now().await;
                log.borrow_mut().push((i, 1));
                i * 10
            }
        })));
        assert_eq!(out, [0, 10, 20]);
        // every first step before any second one: the three ran side by side
        assert_eq!(
            log.into_inner(),
            [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
        );
    }

    #[test]
    fn sleeps_overlap() {
        let t = Instant::now();
        let done = Cell::new(0);
        block_on(join_all((0..5).map(|_| async {
            sleep_until(t + Duration::from_millis(100)).await;
            done.set(done.get() + 1);
        })));
        let e = t.elapsed();
        assert_eq!(done.get(), 5);
        assert!(
            e >= Duration::from_millis(100) && e < Duration::from_millis(450),
            "{e:?}"
        );
    }

    #[test]
    fn nested_runs_keep_the_outer_request() {
        let t = Instant::now();
        let (a, b) = block_on(join(
            async {
                sleep_until(t + Duration::from_millis(50)).await;
                1
            },
            async { block_on(async { 2 }) },
        ));
        assert_eq!((a, b), (1, 2));
    }
}
