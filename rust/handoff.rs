//! Handing the GIL to an export worker that is waiting for it.
//!
//! A worker that re-attaches behind a busy application thread waits out `CPython`'s switch
//! interval (5 ms) before it gets the GIL. Meanwhile the queue fills (4 threads flat out
//! overflow it) and every span waiting in it survives more garbage collections, each of
//! which walks it again. So an export thread says when it is about to re-attach, and once
//! `PATIENCE` more spans have ended meanwhile, the next `on_end` on an application thread
//! releases the GIL until the worker holds it (at most `YIELD_WAIT`): the application spends
//! at once the GIL time it would have lost at the next forced switch anyway.
//!
//! Before that the worker often gets the GIL on its own, when an application thread sleeps
//! or waits on I/O, at no cost to anyone; the caller waives the patience when the queue
//! fills fast enough to overflow meanwhile. Each hand-over costs two thread wake-ups during
//! which nobody holds the GIL; handing over at once (measured: 4 threads ending 100 spans
//! every 5 ms) made 6× as many hand-overs and 12 % less throughput. Patience is counted in
//! spans, not read off a clock: `on_end` runs for every span while a worker waits.
//!
//! A worker can say it waits only once it runs, and a woken worker may first wait for a CPU:
//! on one CPU, or when every other one is busy, the application thread keeps its own until
//! the kernel preempts it, up to a scheduler tick (milliseconds), while a tight loop fills
//! the queue in well under one. So from twice the urgent queue (`Schedule::overdue`) `on_end`
//! also yields to a worker that let go of the GIL to wait for spans and is no longer asleep:
//! waiting for it frees the application thread's CPU. A worker that has a CPU asks long
//! before, so on an idle machine this changes nothing.

use crate::room::Room;
use pyo3::prelude::*;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest an application thread waits for the worker to take the GIL it released.
const YIELD_WAIT: Duration = Duration::from_millis(2);
/// Spans ended while an export thread waits for the GIL before `on_end` hands it over:
/// about 2 ms of a busy application thread.
const PATIENCE: usize = 128;

thread_local! {
    /// The handoff of the core whose batches this thread exports, if it is an export thread.
    static EXPORT_HANDOFF: RefCell<Option<Arc<Handoff>>> = const { RefCell::new(None) };
}

#[derive(Debug, Default)]
pub struct Handoff {
    /// Export threads between the end of their detached work and holding the GIL again.
    reattaching: AtomicUsize,
    /// Export threads between letting go of the GIL to wait for spans and the end of that wait.
    waiting_for_spans: AtomicUsize,
    /// Application threads that released the GIL for them.
    yielded: Room,
    /// Times an application thread released the GIL and the worker took it.
    handed: AtomicU64,
    /// Spans ended since an export thread last began to wait for the GIL.
    ended_while_waiting: AtomicUsize,
    /// The lane began to shut down or was abandoned before the exit gate closed: the closed gate
    /// stops its threads (`exit_gate.rs`). One stopped later (made by a later atexit hook) drains.
    stopped_before_exit: AtomicBool,
}

impl Handoff {
    /// Marks the calling thread as one that exports this handoff's batches.
    pub fn enter_export_thread(self: &Arc<Self>) {
        EXPORT_HANDOFF.with(|current| *current.borrow_mut() = Some(Arc::clone(self)));
    }

    /// Says the lane began to shut down or was abandoned (see `stopped_before_exit`).
    pub fn lane_stops(&self) {
        if !crate::exit_gate::closed() {
            self.stopped_before_exit.store(true, Ordering::SeqCst);
        }
    }

    /// Whether the lane stopped before the exit gate closed (see `exit_gate.rs`).
    pub fn stopped_before_exit(&self) -> bool {
        self.stopped_before_exit.load(Ordering::SeqCst)
    }

    /// Whether an export thread waits for the GIL, and has waited `PATIENCE` spans unless
    /// `urgent`. The hot path's cost is one relaxed load, and an add while one waits.
    pub fn worker_waiting(&self, urgent: bool) -> bool {
        self.reattaching.load(Ordering::Relaxed) > 0
            && (urgent || self.ended_while_waiting.fetch_add(1, Ordering::Relaxed) >= PATIENCE)
    }

    /// Whether neither `worker_waiting` nor `worker_not_running` can hold, whatever the queue: no
    /// export thread waits for the GIL, and any that waits for spans is `asleep`. Changes nothing.
    pub fn worker_needs_nothing(&self, asleep: impl FnOnce() -> bool) -> bool {
        self.reattaching.load(Ordering::Relaxed) == 0
            && (self.waiting_for_spans.load(Ordering::Relaxed) == 0 || asleep())
    }

    /// Whether an export thread that let go of the GIL to wait for spans is not `asleep`: it
    /// was woken, or found spans before it slept, and has yet to ask for the GIL back.
    pub fn worker_not_running(&self, asleep: impl FnOnce() -> bool) -> bool {
        self.waiting_for_spans.load(Ordering::Relaxed) > 0 && !asleep()
    }

    /// Times an application thread handed the GIL to a waiting export thread.
    pub fn handed(&self) -> u64 {
        self.handed.load(Ordering::Relaxed)
    }

    /// Releases the GIL until no export thread waits for it (`worker_waiting`) nor is yet to
    /// ask for it (`worker_not_running`), or `YIELD_WAIT` passes.
    ///
    /// Export threads never yield: they would only wait for one another.
    pub fn yield_to_worker(&self, py: Python<'_>, asleep: impl Fn() -> bool + Sync) {
        if on_export_thread() {
            return;
        }
        let deadline = Instant::now() + YIELD_WAIT;
        let handed = crate::exit_gate::detach(py, || {
            self.yielded.waiter().wait_for(deadline, || {
                // Read in this order: a thread leaves `waiting_for_spans` after it joins `reattaching`.
                let parked = self.waiting_for_spans.load(Ordering::Acquire) == 0 || asleep();
                parked && self.reattaching.load(Ordering::Acquire) == 0
            })
        });
        if handed {
            self.handed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Says an export thread is about to wait for the GIL; its patience starts now.
    fn begin_reattach(&self) {
        self.ended_while_waiting.store(0, Ordering::Relaxed);
        self.reattaching.fetch_add(1, Ordering::AcqRel);
    }

    fn detach<T: Send>(
        &self,
        py: Python<'_>,
        for_spans: bool,
        work: impl Send + FnOnce() -> T,
    ) -> T {
        if for_spans {
            self.waiting_for_spans.fetch_add(1, Ordering::AcqRel);
        }
        let out = crate::exit_gate::detach(py, || {
            let out = work();
            self.begin_reattach();
            if for_spans {
                self.waiting_for_spans.fetch_sub(1, Ordering::AcqRel);
            }
            out
        });
        self.reattaching.fetch_sub(1, Ordering::AcqRel);
        self.yielded.notify();
        out
    }
}

/// The calling thread exports no lane's batches any more.
pub fn leave_export_thread() {
    EXPORT_HANDOFF.with(|current| *current.borrow_mut() = None);
}

fn on_export_thread() -> bool {
    EXPORT_HANDOFF.with(|current| current.borrow().is_some())
}

/// Whether this thread exports the batches of a lane that stopped before the exit gate closed.
pub fn exports_for_a_lane_stopped_before_exit() -> bool {
    EXPORT_HANDOFF.with(|current| {
        current
            .borrow()
            .as_ref()
            .is_some_and(|handoff| handoff.stopped_before_exit())
    })
}

/// Whether the closed exit gate stops this thread in a wait of its own (for a lock, or a
/// greenlet's pause): any thread but the export thread of a lane that works on past the gate
/// (one that stopped after it, or not yet), whose waits take the GIL back as all its others do.
pub fn stopped_in_its_own_waits() -> bool {
    EXPORT_HANDOFF.with(|current| {
        current
            .borrow()
            .as_ref()
            .is_none_or(|handoff| handoff.stopped_before_exit())
    })
}

/// Runs `work` detached from the interpreter; on an export thread, asks for the GIL back
/// so that an application thread hands it over (see the module's comment).
pub fn detach<T: Send>(py: Python<'_>, work: impl Send + FnOnce() -> T) -> T {
    detach_on_export_thread(py, false, work)
}

/// Like `detach`, for `wait`ing for spans: past `Schedule::overdue`, `on_end` yields to this
/// thread once it is woken, before it asks (see the module's comment).
pub fn wait_for_spans<T: Send>(py: Python<'_>, wait: impl Send + FnOnce() -> T) -> T {
    detach_on_export_thread(py, true, wait)
}

fn detach_on_export_thread<T: Send>(
    py: Python<'_>,
    for_spans: bool,
    work: impl Send + FnOnce() -> T,
) -> T {
    match EXPORT_HANDOFF.with(|current| current.borrow().clone()) {
        Some(handoff) => handoff.detach(py, for_spans, work),
        None => crate::exit_gate::detach(py, work),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patience_is_counted_in_spans_unless_urgent() {
        let handoff = Handoff::default();
        assert!(!handoff.worker_waiting(true), "no export thread waits");
        handoff.begin_reattach();
        assert!(handoff.worker_waiting(true));
        let patient = (0..PATIENCE)
            .filter(|_| !handoff.worker_waiting(false))
            .count();
        assert_eq!(patient, PATIENCE);
        assert!(handoff.worker_waiting(false));
    }

    #[test]
    fn a_worker_waiting_for_spans_is_yielded_to_once_it_is_not_asleep() {
        let handoff = Handoff::default();
        assert!(
            !handoff.worker_not_running(|| false),
            "none waits for spans"
        );
        handoff.waiting_for_spans.fetch_add(1, Ordering::Relaxed);
        assert!(
            !handoff.worker_not_running(|| true),
            "asleep: it needs nothing"
        );
        assert!(
            handoff.worker_not_running(|| false),
            "woken: it needs a CPU"
        );
    }

    #[test]
    fn each_wait_starts_the_count_again() {
        let handoff = Handoff::default();
        handoff.begin_reattach();
        (0..PATIENCE).for_each(|_| _ = handoff.worker_waiting(false));
        assert!(handoff.worker_waiting(false));
        handoff.reattaching.store(0, Ordering::Relaxed);
        handoff.begin_reattach();
        assert!(!handoff.worker_waiting(false));
    }
}
