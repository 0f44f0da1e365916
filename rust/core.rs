//! The lane core: the span queue, its accounting, and the batches the worker takes from it.
//!
//! `BatchCore` is the Python class; its Python methods are in `core_methods.rs`. When to take
//! a batch is decided in `batching.rs`, and what a batch becomes is a `BatchReader`'s business
//! (`reader.rs`): the core knows nothing of any exporter's format.
//!
//! Every queue operation runs attached to the interpreter. In a GIL build that
//! means a `fork()` can never observe a half-done push or pop: the thread doing
//! it would hold the GIL, and a child that inherits a held GIL cannot run at all.

use crate::batching::{Schedule, Seen, Step};
use crate::counters::{Counters, LeftOut};
use crate::drop_news::News;
use crate::drop_reasons::DropReason;
use crate::flush::Flushes;
use crate::fork::{self, ForkWatch};
use crate::handoff::{self, Handoff};
use crate::queue::{DropPolicy, Push, SpanQueue};
use crate::read_ahead::ReadAhead;
use crate::read_on::{Mark, Pace, ReadOn};
use crate::reader::{BatchReader, Filling, Lane, OpenBatch};
use crate::room::Room;
use crate::send_time::Sends;
use crate::sync::locked;
use crate::waits;
use crate::wakeup::Wakeup;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

/// Longest shutdown waits for application threads away in the push: a yield lasts at most
/// `handoff::YIELD_WAIT` (2 ms) and shutdown wakes every producer waiting for room.
const PRODUCERS_WAIT: Duration = Duration::from_millis(100);

#[pyclass(frozen, weakref, name = "BatchCore", module = "spanbatch._core")]
pub struct PyBatchCore {
    pub(crate) queue: SpanQueue<Py<PyAny>>,
    /// Shared with the core that takes this one's place once it is shut down (`at_rest`).
    pub(crate) counters: Arc<Counters>,
    pub(crate) wakeup: Wakeup,
    /// Batches handed out and what each flush waits for. Spans are taken off the queue and
    /// flushes asked for under this lock, so a flush's view of the queue matches the worker's.
    flushes: Mutex<Flushes>,
    pub(crate) schedule: Schedule,
    /// Queued spans that wake a worker waiting for its delay: a batch, or a read-ahead chunk.
    pub(crate) wake_at: AtomicUsize,
    /// The open request that application threads read spans into (`read_ahead.rs`).
    pub(crate) read_ahead: ReadAhead,
    /// How long a producer waits for room under the `block` policy.
    pub(crate) block_timeout: Duration,
    /// Producers blocked for room; woken when the worker pops and when shutdown begins.
    pub(crate) room: Room,
    /// Lets the next `on_end` hand the GIL to an export thread waiting for it.
    pub(crate) handoff: Arc<Handoff>,
    /// The worker's and export threads, which must never block on their own queue (an
    /// exporter may end spans) nor wait for their own flush.
    export_threads: Arc<Mutex<Vec<ThreadId>>>,
    pub(crate) fork: ForkWatch,
    /// Told of this core's first full queue: its teller tells it while the worker may be held in
    /// an export (`drop_news.rs`).
    news: Option<Arc<News>>,
    pub(crate) shutdown: AtomicBool,
    /// Application threads detached inside the push (yielding the GIL to the worker, or waiting
    /// for room). Shutdown waits for them to hold the GIL again (`wait_for_producers`): at exit,
    /// the interpreter ends a daemon thread that asks for the GIL back once finalization has
    /// begun by unwinding it, and unwinding through these Rust frames crashes the process
    /// (measured on Python 3.10, 8 daemon threads ending spans through exit: 12 exits of 20
    /// crashed without this wait, 0 of 65 with it).
    away: AtomicUsize,
    pub(crate) abandoned: AtomicBool,
    /// When the worker first saw the oldest span of the batch it is filling.
    window: Mutex<Option<Instant>>,
    /// The batches last handed out to be sent, and how long sends take (`send_time.rs`).
    sends: Mutex<Sends>,
    /// When the push that woke the worker came, and the items by then: where the items that
    /// come while the worker takes a CPU and the GIL begin (`read_on.rs`).
    woken_by: Mutex<Option<Mark>>,
    /// Under gevent, a `gevent.sleep`: the application's waits pause with it instead of
    /// blocking their OS thread, which other greenlets share (see `waits.rs`, `_threads.py`).
    pause: Mutex<Option<Py<PyAny>>>,
}

/// Whether a push that finds the queue full under the `block` policy waits for room.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// It does not: the item is dropped (`queue_full`).
    Never,
    /// Here, in the push: detached, or pausing as a greenlet from native code (`waits.rs`).
    Here,
    /// The caller does: the push hands the item back (`Refused`) to wait for room with (`RoomWait`).
    ByCaller,
}

impl Wait {
    /// `self` if `wait`, else `Never`.
    pub(crate) fn only_if(self, wait: bool) -> Self {
        if wait {
            self
        } else {
            Self::Never
        }
    }
}

/// An item a full queue refused under `block`, handed back to a caller that waits for room itself
/// (`Wait::ByCaller`). Counted as enqueued from the first try, as an item waiting in the push is:
/// it shows as `queued` until it settles (`RoomWait`).
pub(crate) struct Refused {
    /// The core it is counted in, when not the one pushed into (a forked child's successor).
    pub(crate) by: Option<Py<PyBatchCore>>,
    pub(crate) item: Py<PyAny>,
    /// How many items the core had taken in before it.
    pub(crate) seq: u64,
}

/// How a push ended, or a wait for room.
pub(crate) enum Settled {
    Queued,
    /// Queued, the oldest item dropped for it (`queue_full`).
    Evicting,
    /// Dropped for want of room (`queue_full`).
    Full,
    /// Dropped because the lane stopped (`shutdown`).
    Shutdown,
    /// A signal handler raised (Ctrl-C), or gevent interrupted the pause: dropped (`queue_full`).
    Interrupted(PyErr),
}

impl Lane for PyBatchCore {
    fn abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }

    fn drop_held(&self, held: usize, left_out: LeftOut) {
        // Counted before a flush could see the open batch gone (shutdown gave them all up anyway).
        self.with_flushes(|flushes| {
            flushes.drop_open();
            self.counters.drop_held(held as u64, left_out);
        });
    }
}

impl PyBatchCore {
    pub(crate) fn new(
        queue: SpanQueue<Py<PyAny>>,
        schedule: Schedule,
        block_timeout: Duration,
        fork: ForkWatch,
        news: Option<Arc<News>>,
        pause: Option<Py<PyAny>>,
    ) -> Self {
        Self {
            queue,
            counters: Arc::default(),
            wakeup: Wakeup::default(),
            flushes: Mutex::default(),
            wake_at: AtomicUsize::new(schedule.batch_size),
            read_ahead: ReadAhead::default(),
            schedule,
            block_timeout,
            room: Room::default(),
            handoff: Arc::default(),
            export_threads: Arc::default(),
            fork,
            news,
            shutdown: AtomicBool::new(false),
            away: AtomicUsize::new(0),
            abandoned: AtomicBool::new(false),
            window: Mutex::new(None),
            sends: Mutex::new(Sends::new(Mark {
                at: Instant::now(),
                enqueued: 0,
            })),
            woken_by: Mutex::new(None),
            pause: Mutex::new(pause),
        }
    }

    /// What takes this core's place once it is shut down: the same settings, counters, export
    /// threads and GIL handoff, shut down too, with a queue that holds no ring (16 B a slot, kept
    /// for as long as the processor lives: stock's deque frees its memory). An item still pushed
    /// here (by a thread that found this core before the other took its place) is refused and
    /// counted in the counters both share; a batch still out settles here, counted there too.
    pub(crate) fn successor_at_rest(&self, py: Python<'_>) -> Self {
        let pause = self.pause(py).map(Bound::unbind);
        let mut core = Self::new(
            self.queue.emptied(),
            self.schedule,
            self.block_timeout,
            // Never asked: a push into a shut-down core is refused before it looks for a fork.
            ForkWatch::new(None),
            // Nor is its queue ever full: it refuses every item.
            None,
            pause,
        );
        core.counters = Arc::clone(&self.counters);
        core.export_threads = Arc::clone(&self.export_threads);
        core.handoff = Arc::clone(&self.handoff);
        core.shutdown = AtomicBool::new(true);
        core.abandoned = AtomicBool::new(self.abandoned.load(Ordering::SeqCst));
        core
    }

    /// The hot path: push, accounting, and a wake-up or a GIL handoff only when worth it.
    #[inline]
    pub(crate) fn push(&self, py: Python<'_>, span: &Bound<'_, PyAny>) -> PyResult<()> {
        self.push_waiting(py, span, Wait::Here).map(drop)
    }

    /// `push`; a full queue under `block` makes the caller wait for room as `wait` says (see
    /// `on_emit`, `RoomWait`). Returns the item if handed back to wait with (`Wait::ByCaller`).
    pub(crate) fn push_waiting(
        &self,
        py: Python<'_>,
        span: &Bound<'_, PyAny>,
        wait: Wait,
    ) -> PyResult<Option<Refused>> {
        if self.shutdown.load(Ordering::Acquire) {
            self.refuse_at_shutdown();
            return Ok(None);
        }
        // What earlier calls queued is read ahead, or handed to the worker, before this span is
        // queued: the processors after this one (a redactor) have not run on it yet.
        let interrupted = self.work_on_queued(py);
        // Shutdown may have begun (and drained the queue) while this thread read or handed over.
        if self.shutdown.load(Ordering::Acquire) {
            self.refuse_at_shutdown();
            return interrupted.map(|()| None);
        }
        // A Ctrl-C that came meanwhile reaches a caller that would wait itself now: no item to wait with.
        let wait = wait.only_if(interrupted.is_ok() || wait != Wait::ByCaller);
        let seq = self.counters.enqueue();
        self.watch_class(span);
        let settled = if self.leaves_room_to_waiting_producers() {
            Settled::Full
        } else {
            match self.queue.push(span.clone().unbind()) {
                Push::Queued => Settled::Queued,
                Push::Refused(refused) if wait != Wait::Never && self.may_block() => {
                    // A child forked without Python's hooks: no worker here will ever make room.
                    if self.fork.forked() {
                        if let Some(successor) = self.successor(py, false)? {
                            return interrupted.and(Self::pushed_to(successor, py, span, wait));
                        }
                    }
                    if wait == Wait::ByCaller {
                        return Ok(Some(Refused {
                            by: None,
                            item: refused,
                            seq,
                        }));
                    }
                    self.push_blocking(py, refused, Instant::now() + self.block_timeout)
                }
                Push::QueuedEvicting(_) => Settled::Evicting,
                Push::Refused(_) => Settled::Full,
            }
        };
        interrupted.and(self.settle(py, span, settled, seq, wait))
    }

    /// Counts how the push of `span` (the `seq`-th item) ended, then wakes the worker if worth it.
    /// In a forked child the successor core may take it too (see `fork.rs`), pushed with `wait`.
    /// Inlined: the hot path's tail.
    #[inline]
    pub(crate) fn settle(
        &self,
        py: Python<'_>,
        span: &Bound<'_, PyAny>,
        settled: Settled,
        seq: u64,
        wait: Wait,
    ) -> PyResult<Option<Refused>> {
        // Whether `span` is in this queue now, and the drops before it if it overflowed.
        let (dropped, queued_here) = match settled {
            Settled::Queued => (None, true),
            Settled::Evicting => (Some(self.count_overflow()), true),
            Settled::Full => (Some(self.count_overflow()), false),
            Settled::Shutdown => {
                self.counters.drop_spans(DropReason::Shutdown, 1);
                return Ok(None);
            }
            Settled::Interrupted(error) => {
                // It never got room: counted as any span a full queue refused.
                self.count_overflow();
                return Err(error);
            }
        };
        let queued = self.queue.len();
        let wakes = self
            .wakeup
            .claim_wakeup(queued, self.wake_at.load(Ordering::SeqCst));
        // Before the wake-up lock, which a parent thread may have held at the fork.
        if fork::worth_looking(queued, wakes, dropped, seq) && self.fork.forked() {
            return match self.successor(py, queued_here)? {
                Some(successor) => Self::pushed_to(successor, py, span, wait),
                None => Ok(None),
            };
        }
        if wakes {
            // A wake-up is rare and takes a lock anyway: this one costs nothing more.
            let mark = Mark {
                at: Instant::now(),
                enqueued: seq + 1,
            };
            *locked(&self.woken_by) = Some(mark);
            self.wakeup.notify_worker();
        }
        Ok(None)
    }

    /// `push_waiting` for items without a sampled flag (log records): see `BatchCore.on_emit`.
    pub(crate) fn on_emit(
        &self,
        py: Python<'_>,
        record: &Bound<'_, PyAny>,
        wait: Wait,
    ) -> PyResult<Option<Refused>> {
        if self.on_export_thread() {
            self.counters.lost(DropReason::ExportThread, 1);
            return Ok(None);
        }
        self.push_waiting(py, record, wait)
    }

    /// Reads a chunk of the queue ahead, and hands the GIL to a worker waiting for it, when worth it.
    /// An error is a Ctrl-C that came while the chunk was read.
    #[inline]
    fn work_on_queued(&self, py: Python<'_>) -> PyResult<()> {
        // Most pushes have neither to do: a few relaxed loads, without reading the queue's length.
        if !self.read_ahead.reads_here()
            && self.handoff.worker_needs_nothing(|| self.wakeup.asleep())
        {
            return Ok(());
        }
        self.read_ahead_or_hand_over(py)
    }

    fn read_ahead_or_hand_over(&self, py: Python<'_>) -> PyResult<()> {
        let queued = self.queue.len();
        // A batch complete with spans read ahead here is urgent: spans wait in the queue behind
        // it. Measured, interleaved (per 10,000 spans; 1 thread, then 4): with patience, 59-97
        // and 61-89 young collections, 16.7-17.0 and 17.0-19.8 µs per span; urgent, 4-80 and
        // 4-12, 15.7-16.8 and 15.1-16.2 µs.
        let (complete, interrupted) = match self.read_ahead_here(py) {
            Ok(complete) => (complete, Ok(())),
            Err(interrupt) => (false, Err(interrupt)),
        };
        let asleep = || self.wakeup.asleep();
        // A woken worker that has not asked for the GIL yet may be waiting for this thread's CPU.
        let hand_over = self
            .handoff
            .worker_waiting(complete || self.schedule.urgent(queued))
            || ((complete || self.schedule.overdue(queued))
                && self.handoff.worker_not_running(asleep));
        // A child forked without Python's hooks has no worker to hand the GIL to.
        if hand_over && !self.fork.forked() {
            self.away(|| self.handoff.yield_to_worker(py, asleep));
        }
        interrupted
    }

    /// Counts an item offered after shutdown began: enqueued, and dropped (`shutdown`).
    pub(crate) fn refuse_at_shutdown(&self) {
        self.counters.enqueue();
        self.counters.drop_spans(DropReason::Shutdown, 1);
    }

    fn may_block(&self) -> bool {
        self.queue.policy() == DropPolicy::Block
            && !self.block_timeout.is_zero()
            && !self.on_export_thread()
    }

    /// Whether this push, from one of this lane's export threads, leaves the free slots to the
    /// producers waiting for room (`block`): its exporter ends spans into its own lane. Holding the
    /// GIL while they wake, it took each slot an export made, and every waiter dropped its span at
    /// its block timeout (measured: 92 of 100 application spans, the exporter's own 35,000 sent).
    /// Its own span is the one refused now. Only the policy is read on the hot path.
    fn leaves_room_to_waiting_producers(&self) -> bool {
        if self.queue.policy() != DropPolicy::Block {
            return false;
        }
        let waiting = self.room.waiting();
        waiting > 0
            && self.queue.capacity().saturating_sub(self.queue.len()) <= waiting
            && self.on_export_thread()
    }

    pub(crate) fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Acquire) || self.abandoned.load(Ordering::Acquire)
    }

    /// Waits, detached so the worker can drain, for room for `span` until `deadline`.
    ///
    /// The span is already counted as enqueued: while its producer waits it shows as queued.
    /// Ctrl-C ends the wait as it would any blocking call (see `waits.rs`).
    pub(crate) fn push_blocking(
        &self,
        py: Python<'_>,
        mut span: Py<PyAny>,
        deadline: Instant,
    ) -> Settled {
        let pause = self.pause(py);
        let claim = self.room.waiter();
        loop {
            let waited = self.away(|| {
                waits::interruptible(py, deadline, pause.as_ref(), |until| {
                    claim.wait_for(until, || !self.queue.is_full() || self.stopping())
                })
            });
            let Some(room) = waited else {
                return Settled::Shutdown;
            };
            let room = match room {
                Ok(room) => room,
                Err(error) => return Settled::Interrupted(error),
            };
            if self.stopping() {
                return Settled::Shutdown;
            }
            if !room {
                return Settled::Full;
            }
            // Attached again, as every queue operation is; another producer may have won the slot.
            match self.push_attached(span) {
                Ok(()) => return Settled::Queued,
                Err(back) => span = back,
            }
        }
    }

    /// Pushes an item a full queue refused before (not counted again); hands it back if still full.
    pub(crate) fn push_attached(&self, span: Py<PyAny>) -> Result<(), Py<PyAny>> {
        match self.queue.push(span) {
            Push::Queued | Push::QueuedEvicting(_) => Ok(()),
            Push::Refused(back) => Err(back),
        }
    }

    /// Runs `detached`, which releases the GIL, unless shutdown has begun; counted in `away`
    /// meanwhile. `SeqCst`, against `wait_for_producers`: either shutdown sees this thread away
    /// and waits for it, or this thread sees shutdown and stays.
    fn away<T>(&self, detached: impl FnOnce() -> T) -> Option<T> {
        self.away.fetch_add(1, Ordering::SeqCst);
        let out = (!self.shutdown.load(Ordering::SeqCst)).then(detached);
        self.away.fetch_sub(1, Ordering::SeqCst);
        out
    }

    /// After shutdown began: waits, detached, up to `PRODUCERS_WAIT`, for the application
    /// threads still away in the push to hold the GIL again (see `away`).
    pub(crate) fn wait_for_producers(&self, py: Python<'_>) {
        if self.away.load(Ordering::SeqCst) == 0 {
            return;
        }
        let deadline = Instant::now() + PRODUCERS_WAIT;
        crate::exit_gate::detach(py, || {
            while self.away.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                thread::sleep(Duration::from_micros(50));
            }
        });
    }

    pub(crate) fn pause<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        locked(&self.pause)
            .as_ref()
            .map(|pause| pause.bind(py).clone())
    }

    /// Counts one span dropped for a full queue; returns how many were before it.
    pub(crate) fn count_overflow(&self) -> u64 {
        let before = self.counters.drop_spans(DropReason::QueueFull, 1);
        if before == 0 {
            self.first_full_queue();
        }
        before
    }

    /// Wakes the teller of this core's first full queue. Not in a forked child, whose push into
    /// its parent's core goes on to its own core (`fork.rs`), which tells the child's news: the
    /// parent's lock may have been held at the fork.
    #[cold]
    fn first_full_queue(&self) {
        if let Some(news) = &self.news {
            if !self.fork.forked() {
                news.tell();
            }
        }
    }

    /// In a forked child: the lane's successor core (see `fork.rs`), which counts the spans found
    /// here as lost (but the one pushed, if `queued_here`). None when there is none: the span
    /// stays where it is, counted here.
    fn successor<'py>(
        &self,
        py: Python<'py>,
        queued_here: bool,
    ) -> PyResult<Option<Bound<'py, PyBatchCore>>> {
        let orphaned = self.queue.len().saturating_sub(usize::from(queued_here));
        let Some(successor) = self.fork.successor(py, orphaned)? else {
            return Ok(None);
        };
        let successor = successor.cast_into::<PyBatchCore>()?;
        // Another thread of the child is still setting up.
        Ok((!std::ptr::eq(successor.get(), self)).then_some(successor))
    }

    /// `span` pushed into a forked child's `successor`, which counts what it hands back.
    fn pushed_to(
        successor: Bound<'_, PyBatchCore>,
        py: Python<'_>,
        span: &Bound<'_, PyAny>,
        wait: Wait,
    ) -> PyResult<Option<Refused>> {
        let refused = successor.get().push_waiting(py, span, wait)?;
        Ok(refused.map(|refused| Refused {
            by: Some(refused.by.unwrap_or_else(|| successor.unbind())),
            ..refused
        }))
    }

    /// Runs `change` on the flush book, then completes the flushes it made done.
    pub(crate) fn with_flushes<T>(&self, change: impl FnOnce(&mut Flushes) -> T) -> T {
        let (out, done) = {
            let mut flushes = locked(&self.flushes);
            let out = change(&mut flushes);
            (out, flushes.done())
        };
        if let Some(ticket) = done {
            self.wakeup.complete_flush(ticket);
        }
        out
    }

    /// Runs this lane's code that may run Python code (reading spans), unless the exit gate
    /// closed after the lane stopped (`None`; see `exit_gate.rs`).
    pub(crate) fn calling_python<T>(&self, call: impl FnOnce() -> T) -> Option<T> {
        crate::exit_gate::calling_python(|| self.handoff.stopped_before_exit(), call)
    }

    /// Pops up to `count` spans into the open batch. Ending a batch restarts its window for
    /// the spans left behind: they are younger than this batch.
    pub(crate) fn take(&self, count: usize, ends_batch: bool) -> Vec<Py<PyAny>> {
        let mut spans = Vec::with_capacity(count.min(self.queue.len()));
        let taken = {
            let mut flushes = locked(&self.flushes);
            let taken = self.queue.pop_into(count, &mut spans);
            self.counters.take(taken as u64);
            flushes.take(taken as u64);
            taken
        };
        if taken > 0 {
            self.room.notify();
        }
        if ends_batch {
            *locked(&self.window) = (!self.queue.is_empty()).then(Instant::now);
        }
        spans
    }

    /// What the worker should do now, holding `held` spans read ahead towards the next batch.
    pub(crate) fn next_step(&self, held: usize, chunk: usize) -> Step {
        if Lane::abandoned(self) {
            return Step::Stop;
        }
        // An empty queue completes the flushes that only waited for spans evicted meanwhile.
        let (queued, flushing) = self.with_flushes(|flushes| {
            let queued = self.queue.len();
            if queued == 0 {
                flushes.queue_empty();
            }
            (queued, flushes.wants_batch())
        });
        let seen = Seen {
            queued,
            held,
            flushing,
            shutdown: self.shutdown.load(Ordering::Acquire),
        };
        let mut window = locked(&self.window);
        self.schedule
            .next_step(seen, chunk, &mut window, Instant::now())
    }

    /// Waits, detached, until the next step is not a wait; returns it with the open batch
    /// locked, so that no application thread reads into it until the step is taken.
    /// Each wait's end is told to `read_on` (see `ReadOn::woke`).
    fn next_move<'a, R: BatchReader + Send>(
        &'a self,
        py: Python<'_>,
        open: &'a OpenBatch<R>,
        chunk: usize,
        patient: bool,
        read_on: &mut ReadOn,
    ) -> (Step, Filling<'a, R>) {
        loop {
            let filling = open.lock(py, self);
            match self.next_step(filling.held(), chunk) {
                Step::Wait(deadline) if patient => {
                    drop(filling);
                    let enqueued = self.counters.enqueued();
                    let at = handoff::wait_for_spans(py, || {
                        // The producer whose push makes the next take possible wakes the worker:
                        // a whole chunk, or the last spans of a batch that is not a multiple of it.
                        // SeqCst, as the state the worker publishes next: a producer that read the
                        // old value pushed before the worker's own look at the queue, which sees it.
                        // Under the batch's lock: an application thread that reads into it stores
                        // what is left to take, which this must not overwrite with an older view.
                        {
                            let filling = open.lock_detached(self);
                            let take = self.schedule.next_take(filling.held(), chunk);
                            self.wake_at.store(take, Ordering::SeqCst);
                        }
                        let ready = || self.worker_ready(deadline.is_some(), open.held(), chunk);
                        self.wakeup.worker_wait(deadline, ready);
                        Instant::now()
                    });
                    let woken_by = locked(&self.woken_by).take();
                    read_on.woke(Mark { at, enqueued }, deadline.is_none(), woken_by);
                }
                step => return (step, filling),
            }
        }
    }

    fn worker_ready(&self, timed: bool, held: usize, chunk: usize) -> bool {
        self.schedule.enough(self.queue.len(), held, chunk, timed)
            || locked(&self.flushes).wants_batch()
            || self.stopping()
    }

    /// Waits, detached, until a batch is due, then reads up to `max_batches` batches into
    /// `open` (without waiting again once one is read, unless it reads on: see `read_on.rs`),
    /// `chunk` spans at a time while each fills; each is handed out as the object its reader
    /// makes of it. Empty means stop.
    pub(crate) fn read_batches<'py, R: BatchReader + Send>(
        &self,
        py: Python<'py>,
        open: &OpenBatch<R>,
        max_batches: usize,
        chunk: usize,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let mut batches = Vec::new();
        let called = Instant::now();
        let (handed_out, send) = locked(&self.sends).back(called, self.counters.setbacks());
        let mut read_on = ReadOn::default();
        while batches.len() < max_batches {
            let (step, mut filling) = if batches.is_empty() {
                self.next_move(py, open, chunk, true, &mut read_on)
            } else if read_on.reading {
                self.read_on(py, open, chunk, &mut read_on)
            } else {
                // Once a batch is read, only whole batches that are due already join it.
                self.next_move(py, open, self.schedule.batch_size, false, &mut read_on)
            };
            match step {
                Step::Take { count, ends_batch } => {
                    if read_on.pace.is_none() {
                        let window = *locked(&self.window);
                        let first_take = self.mark();
                        read_on.pace = Some(Pace::new(
                            read_on.woken,
                            handed_out,
                            window,
                            called,
                            first_take,
                            send,
                        ));
                    }
                    read_on.looked(self.mark());
                    // Past the exit gate a stopped lane's worker reads no more: reading may run Python code.
                    let read = self.calling_python(|| {
                        let spans = self.take(count, ends_batch);
                        // Nothing only if another thread emptied the queue meanwhile (free-threaded
                        // builds). Signals reach the main thread only: an item whose reading raised
                        // on the worker (a `SystemExit` in a span's property) was left out and counted.
                        let _ = filling.read(py, spans);
                    });
                    if read.is_none() {
                        break;
                    }
                    // Abandoned meanwhile: what is held is dropped as the batch is let go.
                    if ends_batch && filling.held() > 0 && !self.abandoned() {
                        // Counted as the batch goes out: application threads read into it too.
                        read_on.bytes += filling.reader().bytes();
                        batches.push(self.hand_out(py, &mut filling)?);
                        read_on.reading = batches.len() < max_batches
                            && !read_on.stopped
                            && read_on.pace.is_some_and(|pace| {
                                let room = self.queue.capacity().saturating_sub(self.queue.len());
                                let Mark { at, enqueued } = self.mark();
                                pace.reads_on(enqueued, read_on.bytes, room, at)
                            });
                    }
                }
                // Stop: abandoned; spans read ahead are dropped as the batch is let go, not handed out.
                Step::Wait(_) | Step::Stop => break,
            }
        }
        if !batches.is_empty() {
            let setbacks = self.counters.setbacks();
            locked(&self.sends).hand_out(self.mark(), read_on.bytes, setbacks);
        }
        Ok(batches)
    }

    /// Now, and the items enqueued by now.
    fn mark(&self) -> Mark {
        Mark {
            at: Instant::now(),
            enqueued: self.counters.enqueued(),
        }
    }

    /// The next take of a worker reading on (see `read_on.rs`): a chunk once queued, waiting
    /// for it up to `CHUNK_WAIT`; once none comes, what is held goes out as its batch. Returns
    /// it with the open batch locked, as `next_move` does.
    fn read_on<'a, R: BatchReader + Send>(
        &'a self,
        py: Python<'_>,
        open: &'a OpenBatch<R>,
        chunk: usize,
        read_on: &mut ReadOn,
    ) -> (Step, Filling<'a, R>) {
        let filling = open.lock(py, self);
        let step = self.next_step(filling.held(), chunk);
        let (Step::Wait(_), Some(pace)) = (step, read_on.pace) else {
            return (step, filling);
        };
        drop(filling);
        let until = pace.chunk_deadline(Instant::now(), self.schedule.window());
        handoff::wait_for_spans(py, || {
            {
                // Under the batch's lock, as in `next_move`.
                let filling = open.lock_detached(self);
                let take = self.schedule.next_take(filling.held(), chunk);
                self.wake_at.store(take, Ordering::SeqCst);
            }
            let ready = || self.worker_ready(true, open.held(), chunk);
            self.wakeup.worker_wait(Some(until), ready);
        });
        if let Some(woken_by) = locked(&self.woken_by).take() {
            read_on.looked(woken_by);
        }
        let filling = open.lock(py, self);
        let held = filling.held();
        let step = self.next_step(held, chunk);
        if !matches!(step, Step::Wait(_)) {
            return (step, filling);
        }
        read_on.stopped = true;
        read_on.reading = false;
        if held == 0 {
            return (step, filling);
        }
        let rest = Step::Take {
            count: self.queue.len().min(self.schedule.batch_size - held),
            ends_batch: true,
        };
        (rest, filling)
    }

    /// Hands the open batch out as the object its reader makes of it: its export settles it.
    fn hand_out<'py, R: BatchReader>(
        &self,
        py: Python<'py>,
        filling: &mut Filling<'_, R>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (batch, left_out) = filling.finish(py)?;
        locked(&self.flushes).hand_out(batch.as_ptr() as usize, left_out);
        Ok(batch)
    }

    /// Marks the calling thread as one that takes or exports this core's batches.
    pub(crate) fn enter_export_thread(&self) {
        locked(&self.export_threads).push(thread::current().id());
        self.handoff.enter_export_thread();
    }

    /// The calling thread, which `enter_export_thread` marked, takes or exports this core's batches no more.
    pub(crate) fn leave_export_thread(&self) {
        let me = thread::current().id();
        locked(&self.export_threads).retain(|id| *id != me);
        crate::handoff::leave_export_thread();
    }

    /// Whether the calling thread takes or exports this core's batches.
    pub(crate) fn on_export_thread(&self) -> bool {
        locked(&self.export_threads).contains(&thread::current().id())
    }

    pub(crate) fn clear(&self) {
        self.fork.clear();
        locked(&self.pause).take();
    }

    pub(crate) fn traverse(&self, visit: &pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        self.fork.traverse(visit)?;
        self.read_ahead.traverse(visit)?;
        if let Ok(guard) = self.pause.try_lock() {
            if let Some(pause) = guard.as_ref() {
                visit.call(pause)?;
            }
        }
        Ok(())
    }
}
