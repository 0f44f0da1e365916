//! Waking the worker, and flush tickets.
//!
//! Producers must not make a syscall per span, so the worker advertises how it
//! sleeps: `Idle` (queue empty, any span is worth a wake-up) or `Timed` (a
//! partial batch is waiting for its delay, only a full batch is worth one).
//! The producer whose push makes a wake-up worthwhile claims it by swapping the
//! state to `Busy`; everyone else sees `Busy` and goes on.
//!
//! Flushes are tickets (see `flush.rs` for what each waits for): a caller waits here
//! until its ticket is reported done, its deadline passes, or the lane gives up.
//!
//! The lock and condition variables are `std`'s, not `parking_lot`'s: see `sync.rs`.

use crate::sync::{locked, wait_until};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

const BUSY: u8 = 0;
const IDLE: u8 = 1;
const TIMED: u8 = 2;

#[derive(Debug, Default)]
pub struct Wakeup {
    state: AtomicU8,
    lock: Mutex<()>,
    worker: Condvar,
    flush_done: AtomicU64,
    /// Set when shutdown abandons the lane: no waiting flush can complete any more.
    flushes_given_up: AtomicBool,
    flushers: Condvar,
}

impl Wakeup {
    fn lock(&self) -> MutexGuard<'_, ()> {
        locked(&self.lock)
    }

    /// Blocks the worker until `ready()` holds, it is notified, or `deadline` passes.
    ///
    /// Without a deadline the worker sleeps `Idle`, otherwise `Timed`. `ready` is
    /// checked after the state is published, so a producer either sees the state
    /// and wakes the worker, or its push is seen by `ready`.
    pub fn worker_wait(&self, deadline: Option<Instant>, ready: impl Fn() -> bool) {
        let guard = self.lock();
        let sleeping = if deadline.is_some() { TIMED } else { IDLE };
        self.state.store(sleeping, Ordering::SeqCst);
        if !ready() {
            let _guard = match deadline {
                Some(at) => {
                    let timeout = at.saturating_duration_since(Instant::now());
                    let waited = self.worker.wait_timeout(guard, timeout);
                    waited.unwrap_or_else(PoisonError::into_inner).0
                }
                None => self
                    .worker
                    .wait(guard)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
        self.state.store(BUSY, Ordering::SeqCst);
    }

    /// Whether the worker sleeps in `worker_wait` and no producer has woken it.
    pub fn asleep(&self) -> bool {
        matches!(self.state.load(Ordering::Relaxed), IDLE | TIMED)
    }

    /// Sleeps until `deadline` or until `stop()` holds; returns whether it stopped early.
    ///
    /// The state stays `Busy`, so producers do not spend wake-ups on a pause; only
    /// [`Wakeup::notify_worker`] (shutdown, flush) interrupts it to look at `stop`.
    pub fn pause(&self, deadline: Instant, stop: impl Fn() -> bool) -> bool {
        wait_until(&self.worker, self.lock(), deadline, stop)
    }

    /// Called after a push that left `queued` spans. Returns true when this producer has
    /// claimed the wake-up and must now call [`Wakeup::notify_worker`].
    pub fn claim_wakeup(&self, queued: usize, batch_size: usize) -> bool {
        let state = self.state.load(Ordering::SeqCst);
        let worth_it = state == IDLE || (state == TIMED && queued >= batch_size);
        worth_it
            && self
                .state
                .compare_exchange(state, BUSY, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    /// Wakes the worker whatever it is waiting for (flush, shutdown), and every export
    /// thread pausing for a retry, so that each looks again at what it waits for.
    pub fn notify_worker(&self) {
        // Taking the lock orders the notification after the worker's own check of `ready`.
        let _guard = self.lock();
        self.worker.notify_all();
    }

    /// Every span queued before `ticket` (and before each earlier one) is settled.
    pub fn complete_flush(&self, ticket: u64) {
        let _guard = self.lock();
        self.flush_done.fetch_max(ticket, Ordering::SeqCst);
        self.flushers.notify_all();
    }

    /// Flushes not complete now never will be: their waits return false at once.
    pub fn give_up_flushes(&self) {
        let _guard = self.lock();
        self.flushes_given_up.store(true, Ordering::SeqCst);
        self.flushers.notify_all();
    }

    /// Waits until `ticket` is complete, `deadline` passes or flushes are given up.
    pub fn wait_flush(&self, ticket: u64, deadline: Instant) -> FlushWait {
        wait_until(&self.flushers, self.lock(), deadline, || {
            self.flush_state(ticket) != FlushWait::Pending
        });
        self.flush_state(ticket)
    }

    /// Where `ticket` is now, looked at without the lock: both flags only ever move forward, so
    /// a state seen still holds after.
    pub fn flush_state(&self, ticket: u64) -> FlushWait {
        if self.flush_done.load(Ordering::SeqCst) >= ticket {
            FlushWait::Done
        } else if self.flushes_given_up.load(Ordering::SeqCst) {
            FlushWait::GivenUp
        } else {
            FlushWait::Pending
        }
    }
}

/// How a wait for a flush ticket ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushWait {
    Done,
    /// Shutdown abandoned the lane: the flush will never complete.
    GivenUp,
    /// The deadline passed first; the flush may still complete later.
    Pending,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn idle_worker_is_woken_by_the_first_push_only() {
        let w = Arc::new(Wakeup::default());
        let queued = Arc::new(AtomicUsize::new(0));
        let worker = {
            let (w, queued) = (Arc::clone(&w), Arc::clone(&queued));
            thread::spawn(move || w.worker_wait(None, || queued.load(Ordering::SeqCst) > 0))
        };
        // Wait until the worker has published that it sleeps.
        while w.state.load(Ordering::SeqCst) != IDLE {
            thread::yield_now();
        }
        queued.store(1, Ordering::SeqCst);
        assert!(w.claim_wakeup(1, 512));
        assert!(
            !w.claim_wakeup(2, 512),
            "a second producer must not wake it again"
        );
        w.notify_worker();
        worker.join().unwrap();
    }

    #[test]
    fn timed_worker_is_woken_only_by_a_full_batch() {
        let w = Wakeup::default();
        w.state.store(TIMED, Ordering::SeqCst);
        assert!(!w.claim_wakeup(10, 512));
        assert!(w.claim_wakeup(512, 512));
        assert_eq!(w.state.load(Ordering::SeqCst), BUSY);
    }

    #[test]
    fn a_worker_woken_by_a_producer_is_no_longer_asleep() {
        let w = Wakeup::default();
        assert!(!w.asleep(), "busy");
        w.state.store(TIMED, Ordering::SeqCst);
        assert!(w.asleep());
        assert!(w.claim_wakeup(512, 512));
        assert!(!w.asleep());
    }

    #[test]
    fn timed_wait_returns_at_its_deadline() {
        let w = Wakeup::default();
        let start = Instant::now();
        w.worker_wait(Some(start + Duration::from_millis(30)), || false);
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn a_push_racing_the_worker_going_to_sleep_is_never_lost() {
        // Each round the worker sleeps without deadline until the producer's push; a lost
        // wake-up leaves the round unfinished, which fails the test at its deadline.
        let w = Arc::new(Wakeup::default());
        let queued = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let rounds = 2_000;
        let worker = {
            let (w, queued, finished) =
                (Arc::clone(&w), Arc::clone(&queued), Arc::clone(&finished));
            thread::spawn(move || {
                for round in 1..=rounds {
                    while queued.load(Ordering::SeqCst) < round {
                        w.worker_wait(None, || queued.load(Ordering::SeqCst) >= round);
                    }
                    finished.store(round, Ordering::SeqCst);
                }
            })
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        for round in 1..=rounds {
            queued.store(round, Ordering::SeqCst);
            if w.claim_wakeup(1, 512) {
                w.notify_worker();
            }
            while finished.load(Ordering::SeqCst) < round {
                assert!(Instant::now() < deadline, "wake-up lost in round {round}");
                thread::yield_now();
            }
        }
        worker.join().unwrap();
    }

    #[test]
    fn a_pause_runs_to_its_deadline_unless_stopped() {
        let w = Arc::new(Wakeup::default());
        let start = Instant::now();
        assert!(!w.pause(start + Duration::from_millis(30), || false));
        assert!(start.elapsed() >= Duration::from_millis(30));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopper = {
            let (w, stop) = (Arc::clone(&w), Arc::clone(&stop));
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(20));
                stop.store(true, Ordering::SeqCst);
                w.notify_worker();
            })
        };
        let start = Instant::now();
        assert!(w.pause(start + Duration::from_secs(30), || stop
            .load(Ordering::SeqCst)));
        assert!(start.elapsed() < Duration::from_secs(10));
        stopper.join().unwrap();
    }

    #[test]
    fn flush_tickets_complete_in_order_and_time_out() {
        let w = Arc::new(Wakeup::default());
        let (first, second) = (1, 2);
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            w.wait_flush(first, soon),
            FlushWait::Pending,
            "nothing completed it yet"
        );
        let completer = {
            let w = Arc::clone(&w);
            thread::spawn(move || w.complete_flush(second))
        };
        assert_eq!(
            w.wait_flush(second, Instant::now() + Duration::from_secs(10)),
            FlushWait::Done
        );
        assert_eq!(w.wait_flush(first, Instant::now()), FlushWait::Done);
        completer.join().unwrap();
    }

    #[test]
    fn giving_up_ends_every_wait_for_a_flush_not_complete() {
        let w = Arc::new(Wakeup::default());
        w.complete_flush(1);
        let waiter = {
            let w = Arc::clone(&w);
            thread::spawn(move || w.wait_flush(2, Instant::now() + Duration::from_secs(60)))
        };
        thread::sleep(Duration::from_millis(20));
        let start = Instant::now();
        w.give_up_flushes();
        assert_eq!(waiter.join().unwrap(), FlushWait::GivenUp);
        assert!(start.elapsed() < Duration::from_secs(30));
        assert_eq!(
            w.wait_flush(1, Instant::now()),
            FlushWait::Done,
            "a completed flush stays complete"
        );
        assert_eq!(
            w.wait_flush(3, Instant::now() + Duration::from_secs(60)),
            FlushWait::GivenUp
        );
    }
}
