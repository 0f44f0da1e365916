//! `BatchCore`: the Python-facing lane core (queue, counters, wake-up, batch slicing).
//!
//! Every queue operation runs attached to the interpreter. In a GIL build that
//! means a `fork()` can never observe a half-done push or pop: the thread doing
//! it would hold the GIL, and a child that inherits a held GIL cannot run at all.

use crate::counters::{Counters, DropReason};
use crate::flush::Flushes;
use crate::handoff::{self, Handoff};
use crate::otlp::encoder::{PySpanEncoder, PySpanRequest, RequestBuilder};
use crate::otlp::types::Types;
use crate::queue::{DropPolicy, Push, SpanQueue};
use crate::room::Room;
use crate::stats::PyStats;
use crate::sync::locked;
use crate::waits;
use crate::wakeup::{FlushWait, Wakeup};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use pyo3::{intern, PyTraverseError, PyVisit};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

/// Longest delay or timeout we keep as given; beyond it `Instant` arithmetic could overflow.
const LONGEST_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);
/// Look for a fork once per this many spans, and once per this many dropped spans.
const FORK_CHECK_EVERY_SPANS: u64 = 1024;
const FORK_CHECK_EVERY_DROPS: u64 = 64;

fn millis(value: f64) -> Duration {
    if value.is_nan() || value <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(value / 1000.0).map_or(LONGEST_WAIT, |d| d.min(LONGEST_WAIT))
    }
}

fn parse_policy(name: &str) -> PyResult<DropPolicy> {
    match name {
        "oldest" => Ok(DropPolicy::Oldest),
        "newest" => Ok(DropPolicy::Newest),
        "block" => Ok(DropPolicy::Block),
        other => Err(PyValueError::new_err(format!(
            "drop_policy must be 'oldest', 'newest' or 'block', not {other:?}."
        ))),
    }
}

/// Whether an ended span is sampled, reading the SDK's stored context when it has one.
pub(crate) fn is_sampled(span: &Bound<'_, PyAny>) -> bool {
    let py = span.py();
    if let Ok(context) = span.getattr(intern!(py, "_context")) {
        // The SDK's SpanContext is a tuple: (trace_id, span_id, is_remote, trace_flags, ...).
        if let Ok(fields) = context.cast::<PyTuple>() {
            if let Some(flags) = fields
                .get_item(3)
                .ok()
                .and_then(|f| f.extract::<u64>().ok())
            {
                return flags & 1 == 1;
            }
        }
    }
    // Any other ReadableSpan: the public path, as the stock processor reads it.
    let public = || -> PyResult<bool> {
        let context = span.getattr(intern!(py, "context"))?;
        if !context.is_truthy()? {
            return Ok(false);
        }
        context
            .getattr(intern!(py, "trace_flags"))?
            .getattr(intern!(py, "sampled"))?
            .is_truthy()
    };
    public().unwrap_or(false)
}

#[pyclass(frozen, name = "BatchCore", module = "spanbatch._core")]
pub struct PyBatchCore {
    queue: SpanQueue<Py<PyAny>>,
    counters: Counters,
    wakeup: Wakeup,
    /// Batches handed out and what each flush waits for. Spans are taken off the queue and
    /// flushes asked for under this lock, so a flush's view of the queue matches the worker's.
    flushes: Mutex<Flushes>,
    max_export_batch_size: usize,
    /// Queued spans that wake a worker waiting for its delay: a batch, or a read-ahead chunk.
    wake_at: AtomicUsize,
    schedule_delay: Duration,
    /// The latency cap of a partial batch (`linger_millis`); the earlier of it and the delay wins.
    linger: Option<Duration>,
    /// How long a producer waits for room under the `block` policy.
    block_timeout: Duration,
    /// Producers blocked for room; woken when the worker pops and when shutdown begins.
    room: Room,
    /// Lets the next `on_end` hand the GIL to an export thread waiting for it.
    handoff: Arc<Handoff>,
    /// Queued spans from which a waiting export thread is handed the GIL at once, not after
    /// the hand-over's patience: a full batch waits, or the queue is a quarter full.
    hand_over_at: usize,
    /// The worker's and export threads, which must never block on their own queue (an
    /// exporter may end spans) nor wait for their own flush.
    export_threads: Mutex<Vec<ThreadId>>,
    pid: u32,
    shutdown: AtomicBool,
    abandoned: AtomicBool,
    /// When the worker first saw the oldest span of the batch it is filling.
    window_start: Mutex<Option<Instant>>,
    /// Called with the number of orphaned spans when a push finds itself in a forked child.
    on_fork: Mutex<Option<Py<PyAny>>>,
    /// Under gevent, a `gevent.sleep`: the application's waits pause with it instead of
    /// blocking their OS thread, which other greenlets share (see `waits.rs`, `_threads.py`).
    pause: Mutex<Option<Py<PyAny>>>,
}

impl PyBatchCore {
    pub(crate) fn push(&self, py: Python<'_>, span: &Bound<'_, PyAny>) -> PyResult<()> {
        let seq = self.counters.enqueue();
        if self.shutdown.load(Ordering::Acquire) {
            self.counters.drop_spans(DropReason::Shutdown, 1);
            return Ok(());
        }
        let overflowed = match self.queue.push(span.clone().unbind()) {
            Push::Queued => false,
            Push::Refused(refused) if self.may_block() => match self.push_blocking(py, refused) {
                Blocked::Queued => false,
                Blocked::Full => self.count_overflow(),
                Blocked::Shutdown => {
                    self.counters.drop_spans(DropReason::Shutdown, 1);
                    return Ok(());
                }
                Blocked::Interrupted(error) => {
                    // It never got room: counted as any span a full queue refused.
                    self.count_overflow();
                    return Err(error);
                }
            },
            Push::QueuedEvicting(_) | Push::Refused(_) => self.count_overflow(),
        };
        let queued = self.queue.len();
        let wake = self
            .wakeup
            .claim_wakeup(queued, self.wake_at.load(Ordering::Relaxed));
        // A fork that skipped Python's hooks is looked for at these rare points, not per span,
        // and before the wake-up lock, which a parent thread may have held at the fork. The
        // first span into an empty queue is one of them, so the child of an idle parent
        // notices at once, whatever state the parent's worker was in.
        let look_for_fork = queued == 1 || wake || overflowed || seq % FORK_CHECK_EVERY_SPANS == 0;
        if look_for_fork && std::process::id() != self.pid {
            return self.hand_over_after_fork(py, span);
        }
        if wake {
            self.wakeup.notify_worker();
        }
        // A child forked without Python's hooks has no worker to hand the GIL to.
        let urgent = queued >= self.hand_over_at;
        if self.handoff.worker_waiting(urgent) && std::process::id() == self.pid {
            self.handoff.yield_to_worker(py);
        }
        Ok(())
    }

    fn may_block(&self) -> bool {
        self.queue.policy() == DropPolicy::Block
            && !self.block_timeout.is_zero()
            && !self.on_export_thread()
    }

    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Acquire) || self.abandoned.load(Ordering::Acquire)
    }

    /// Waits, detached so the worker can drain, for room for `span` until the block timeout.
    ///
    /// The span is already counted as enqueued: while its producer waits it shows as queued.
    /// Ctrl-C ends the wait as it would any blocking call (see `waits.rs`).
    fn push_blocking(&self, py: Python<'_>, mut span: Py<PyAny>) -> Blocked {
        let deadline = Instant::now() + self.block_timeout;
        let pause = self.pause(py);
        loop {
            let room = waits::interruptible(py, deadline, pause.as_ref(), |until| {
                self.room
                    .wait_for(until, || !self.queue.is_full() || self.stopping())
            });
            let room = match room {
                Ok(room) => room,
                Err(error) => return Blocked::Interrupted(error),
            };
            if self.stopping() {
                return Blocked::Shutdown;
            }
            if !room {
                return Blocked::Full;
            }
            // Attached again, as every queue operation is; another producer may have won the slot.
            match self.queue.push(span) {
                Push::Queued | Push::QueuedEvicting(_) => return Blocked::Queued,
                Push::Refused(back) => span = back,
            }
        }
    }

    fn pause<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        locked(&self.pause)
            .as_ref()
            .map(|pause| pause.bind(py).clone())
    }

    /// Counts one span dropped for a full queue; returns whether to look for a fork now.
    fn count_overflow(&self) -> bool {
        self.counters.drop_spans(DropReason::QueueFull, 1) % FORK_CHECK_EVERY_DROPS == 0
    }

    fn hand_over_after_fork(&self, py: Python<'_>, span: &Bound<'_, PyAny>) -> PyResult<()> {
        let Some(callback) = locked(&self.on_fork).as_ref().map(|c| c.clone_ref(py)) else {
            return Ok(());
        };
        // This span is queued here too; the successor takes it, and counts the others as lost.
        let orphaned = self.queue.len().saturating_sub(1);
        let successor = callback.call1(py, (orphaned,))?;
        let successor = successor.bind(py);
        if successor.is_none() {
            return Ok(());
        }
        let successor = successor.cast::<PyBatchCore>()?.get();
        if std::ptr::eq(successor, self) {
            // Another thread of the child is still setting up; the span stays counted here.
            return Ok(());
        }
        successor.push(py, span)
    }

    /// Pops up to `count` spans into the open batch. Ending a batch restarts its delay for
    /// the spans left behind.
    fn take(&self, count: usize, ends_batch: bool) -> Vec<Py<PyAny>> {
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
            // Spans left behind are younger than this batch: their delay starts now.
            *locked(&self.window_start) = (!self.queue.is_empty()).then(Instant::now);
        }
        spans
    }

    /// Hands the open batch out as `batch`, the object Python gets: its export settles it.
    fn hand_out(&self, batch: &Bound<'_, PyAny>, left_out: u64) {
        locked(&self.flushes).hand_out(batch.as_ptr() as usize, left_out);
    }

    /// The queue's length, and whether a flush waits for spans queued or in the open batch.
    /// An empty queue completes the flushes that only waited for spans evicted meanwhile.
    fn flush_view(&self) -> (usize, bool) {
        let (len, wants, done) = {
            let mut flushes = locked(&self.flushes);
            let len = self.queue.len();
            let done = if len == 0 {
                flushes.queue_empty();
                flushes.done()
            } else {
                None
            };
            (len, flushes.wants_batch(), done)
        };
        if let Some(ticket) = done {
            self.wakeup.complete_flush(ticket);
        }
        (len, wants)
    }

    /// What the worker should do right now, holding `held` spans it read ahead towards the
    /// next batch, and reading ahead once `chunk` spans are queued.
    fn next_step(&self, held: usize, chunk: usize) -> Step {
        if self.abandoned.load(Ordering::Acquire) {
            return Step::Stop;
        }
        let (len, flushing) = self.flush_view();
        let draining = self.shutdown.load(Ordering::Acquire) || flushing;
        let room = self.max_export_batch_size - held;
        if len >= room || (draining && len + held > 0) {
            return Step::Take(len.min(room), true);
        }
        if len + held == 0 {
            *locked(&self.window_start) = None;
            if self.shutdown.load(Ordering::Acquire) {
                return Step::Stop;
            }
            return Step::Wait(None);
        }
        let now = Instant::now();
        let started = *locked(&self.window_start).get_or_insert(now);
        let wait = self.linger.map_or(self.schedule_delay, |linger| {
            linger.min(self.schedule_delay)
        });
        let due = started + wait;
        if now >= due {
            return Step::Take(len, true);
        }
        if len >= chunk {
            return Step::Take(chunk, false);
        }
        Step::Wait(Some(due))
    }

    /// Waits, detached, until the next step is not a wait.
    fn next_move(&self, py: Python<'_>, held: usize, chunk: usize, patient: bool) -> Step {
        loop {
            match self.next_step(held, chunk) {
                Step::Wait(deadline) if patient => handoff::detach(py, || {
                    let ready = || {
                        self.worker_ready(deadline, chunk.min(self.max_export_batch_size - held))
                    };
                    self.wakeup.worker_wait(deadline, ready);
                }),
                step => return step,
            }
        }
    }

    /// Waits, detached, until a batch is due, then takes up to `max_batches` without waiting
    /// again; empty means stop.
    fn due_batches<'py>(
        &self,
        py: Python<'py>,
        max_batches: usize,
    ) -> PyResult<Vec<Bound<'py, PyList>>> {
        let whole = self.max_export_batch_size;
        let mut batches = Vec::new();
        while batches.len() < max_batches {
            match self.next_move(py, 0, whole, batches.is_empty()) {
                Step::Take(count, _) => {
                    let spans = self.take(count, true);
                    // Empty only if another thread emptied the queue meanwhile (free-threaded builds).
                    if !spans.is_empty() {
                        let batch = PyList::new(py, spans)?;
                        self.hand_out(&batch, 0);
                        batches.push(batch);
                    }
                }
                Step::Wait(_) | Step::Stop => break,
            }
        }
        Ok(batches)
    }

    /// Like `due_batches`, but reads spans into requests with `encoder` while each batch
    /// fills, `chunk` spans at a time, so that spans die young: one that waited in the
    /// queue for a whole batch would outlive several garbage collections, and be promoted.
    fn due_requests(
        &self,
        py: Python<'_>,
        encoder: &PySpanEncoder,
        max_batches: usize,
        chunk: usize,
    ) -> PyResult<Vec<Py<PySpanRequest>>> {
        self.wake_at.store(chunk, Ordering::Relaxed);
        let types = Types::get(py)?;
        let mut requests = Vec::new();
        let mut builder = RequestBuilder::default();
        while requests.len() < max_batches {
            // Once a batch is read, only whole batches that are due already join it.
            let (chunk, patient) = if requests.is_empty() {
                (chunk, true)
            } else {
                (self.max_export_batch_size, false)
            };
            match self.next_move(py, builder.taken(), chunk, patient) {
                Step::Take(count, ends_batch) => {
                    for span in self.take(count, ends_batch) {
                        encoder.add(&mut builder, span.bind(py), types);
                    }
                    if ends_batch && builder.taken() > 0 {
                        let request = encoder.finish(std::mem::take(&mut builder));
                        requests.push(self.hand_out_request(py, request)?);
                    }
                }
                Step::Wait(_) => break,
                Step::Stop => {
                    // Abandoned with spans read ahead: they still go out, as their batch.
                    if builder.taken() > 0 {
                        requests.push(self.hand_out_request(py, encoder.finish(builder))?);
                    }
                    break;
                }
            }
        }
        Ok(requests)
    }

    /// The open batch as a request object; the spans its encoder left out are counted when
    /// its export returns.
    fn hand_out_request(
        &self,
        py: Python<'_>,
        request: PySpanRequest,
    ) -> PyResult<Py<PySpanRequest>> {
        let left_out = request.left_out;
        let request = Py::new(py, request)?;
        self.hand_out(request.bind(py).as_any(), left_out);
        Ok(request)
    }

    fn worker_ready(&self, deadline: Option<Instant>, enough: usize) -> bool {
        let len = self.queue.len();
        len >= enough
            || (deadline.is_none() && len > 0)
            || locked(&self.flushes).wants_batch()
            || self.shutdown.load(Ordering::Acquire)
            || self.abandoned.load(Ordering::Acquire)
    }
}

/// How a producer's wait for room ended.
enum Blocked {
    Queued,
    Full,
    Shutdown,
    /// A signal handler raised (Ctrl-C), or gevent interrupted the pause.
    Interrupted(PyErr),
}

enum Step {
    /// Take this many spans; `true` when they end a batch.
    Take(usize, bool),
    Wait(Option<Instant>),
    Stop,
}

#[pymethods]
impl PyBatchCore {
    #[new]
    #[pyo3(signature = (
        max_queue_size, schedule_delay_millis, max_export_batch_size, *,
        drop_policy = "oldest", linger_millis = None, block_timeout_millis = 0.0, on_fork = None,
        pause = None,
    ))]
    #[allow(clippy::too_many_arguments)] // the Python constructor's arguments, one by one
    fn new(
        max_queue_size: usize,
        schedule_delay_millis: f64,
        max_export_batch_size: usize,
        drop_policy: &str,
        linger_millis: Option<f64>,
        block_timeout_millis: f64,
        on_fork: Option<Py<PyAny>>,
        pause: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        if max_queue_size == 0
            || max_export_batch_size == 0
            || max_export_batch_size > max_queue_size
        {
            return Err(PyValueError::new_err(
                "need 0 < max_export_batch_size <= max_queue_size.",
            ));
        }
        Ok(Self {
            queue: SpanQueue::new(max_queue_size, parse_policy(drop_policy)?),
            counters: Counters::default(),
            wakeup: Wakeup::default(),
            flushes: Mutex::default(),
            max_export_batch_size,
            wake_at: AtomicUsize::new(max_export_batch_size),
            schedule_delay: millis(schedule_delay_millis),
            linger: linger_millis.map(millis),
            block_timeout: millis(block_timeout_millis),
            room: Room::default(),
            handoff: Arc::default(),
            hand_over_at: max_export_batch_size.min(max_queue_size / 4).max(1),
            export_threads: Mutex::new(Vec::new()),
            pid: std::process::id(),
            shutdown: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            window_start: Mutex::new(None),
            on_fork: Mutex::new(on_fork),
            pause: Mutex::new(pause),
        })
    }

    /// The hot path: sampled check, push, accounting, and a wake-up only when worth it.
    fn on_end(&self, py: Python<'_>, span: &Bound<'_, PyAny>) -> PyResult<()> {
        if is_sampled(span) {
            self.push(py, span)?;
        }
        Ok(())
    }

    /// Accounts for spans a forked child found queued but cannot export (dropped: `fork`).
    fn count_lost_to_fork(&self, count: u64) {
        for _ in 0..count {
            self.counters.enqueue();
        }
        self.counters.drop_spans(DropReason::Fork, count);
    }

    /// Like `next_batches`, for an exporter with a `SpanEncoder`: each batch comes read into
    /// a `SpanRequest`, read `read_ahead` spans at a time while it filled.
    fn next_requests(
        &self,
        py: Python<'_>,
        encoder: &Bound<'_, PySpanEncoder>,
        max_batches: usize,
        read_ahead: usize,
    ) -> PyResult<Option<Vec<Py<PySpanRequest>>>> {
        let chunk = read_ahead.clamp(1, self.max_export_batch_size);
        let requests = self.due_requests(py, encoder.get(), max_batches.max(1), chunk)?;
        Ok((!requests.is_empty()).then_some(requests))
    }

    /// Blocks, detached from the interpreter, until a batch is due, then takes up to
    /// `max_batches` batches that are due at once; `None` means stop.
    ///
    /// For exporters that send several batches per call: a worker that waits for the GIL
    /// once per call, not once per batch, keeps up with a busier application thread.
    fn next_batches<'py>(
        &self,
        py: Python<'py>,
        max_batches: usize,
    ) -> PyResult<Option<Vec<Bound<'py, PyList>>>> {
        let batches = self.due_batches(py, max_batches.max(1))?;
        Ok((!batches.is_empty()).then_some(batches))
    }

    /// Reports that the export of `batch`, as `next_batches` or `next_requests` returned it,
    /// returned. It settles the spans handed over in it, whatever the exporter did to the list;
    /// `left_out` of them (and those its request left out) were left out by the encoder.
    #[pyo3(signature = (batch, success, left_out = 0))]
    fn finish_batch(&self, batch: &Bound<'_, PyAny>, success: bool, left_out: u64) -> PyResult<()> {
        let (handed, done) = {
            let mut flushes = locked(&self.flushes);
            let handed = flushes.settle(batch.as_ptr() as usize);
            // Counted before a flush can see the batch settled and return.
            if let Some(handed) = handed {
                let left_out = handed.left_out.saturating_add(left_out);
                self.counters.finish(handed.spans, left_out, success);
            }
            (handed, flushes.done())
        };
        if let Some(ticket) = done {
            self.wakeup.complete_flush(ticket);
        }
        match handed {
            Some(_) => Ok(()),
            None => Err(PyValueError::new_err(
                "finish_batch: not a batch this core handed out, or one already finished.",
            )),
        }
    }

    /// Marks the calling thread as one that takes or exports this core's batches.
    fn enter_export_thread(&self) {
        locked(&self.export_threads).push(thread::current().id());
        self.handoff.enter_export_thread();
    }

    /// Whether the calling thread takes or exports this core's batches.
    fn on_export_thread(&self) -> bool {
        locked(&self.export_threads).contains(&thread::current().id())
    }

    /// Times an application thread's `on_end` handed the GIL to an export thread waiting for it.
    #[getter]
    fn gil_handoffs(&self) -> u64 {
        self.handoff.handed()
    }

    /// Counts one more attempt at a batch whose export failed.
    fn count_retry(&self) {
        self.counters.retry();
    }

    /// Sleeps, detached, for a retry's backoff; returns False at once when shutdown begins.
    fn backoff(&self, py: Python<'_>, timeout_millis: f64) -> bool {
        let deadline = Instant::now() + millis(timeout_millis);
        !py.detach(|| self.wakeup.pause(deadline, || self.stopping()))
    }

    /// Takes a flush ticket for the spans queued now, and wakes the worker to take them.
    fn request_flush(&self) -> u64 {
        let (ticket, wants, done) = {
            let mut flushes = locked(&self.flushes);
            let ticket = flushes.request(self.queue.len());
            (ticket, flushes.wants_batch(), flushes.done())
        };
        if let Some(done) = done {
            self.wakeup.complete_flush(done);
        }
        if wants {
            self.wakeup.notify_worker();
        }
        ticket
    }

    /// Waits, detached, until `ticket` is done or `timeout_millis` passes; Ctrl-C interrupts it.
    fn wait_flush(&self, py: Python<'_>, ticket: u64, timeout_millis: f64) -> PyResult<bool> {
        let deadline = Instant::now() + millis(timeout_millis);
        let pause = self.pause(py);
        // A flush given up by shutdown ends the wait at once, as a completed one does.
        waits::interruptible(py, deadline, pause.as_ref(), |until| {
            self.wakeup.wait_flush(ticket, until) != FlushWait::Pending
        })?;
        Ok(self.wakeup.wait_flush(ticket, Instant::now()) == FlushWait::Done)
    }

    /// Stops accepting spans and wakes the worker to drain; false if already shut down.
    fn begin_shutdown(&self) -> bool {
        let first = !self.shutdown.swap(true, Ordering::AcqRel);
        if first {
            self.wakeup.notify_worker();
            self.room.notify();
        }
        first
    }

    /// Gives up on the queued spans (counted as dropped at shutdown); returns how many.
    fn abandon(&self) -> u64 {
        self.abandoned.store(true, Ordering::Release);
        let mut spans = Vec::new();
        let count = self.queue.pop_into(usize::MAX, &mut spans) as u64;
        self.counters.drop_spans(DropReason::Shutdown, count);
        self.wakeup.give_up_flushes();
        self.wakeup.notify_worker();
        self.room.notify();
        count
    }

    /// A consistent snapshot of the counters.
    fn stats(&self) -> PyStats {
        self.counters.snapshot().into()
    }

    /// The number of spans physically in the queue (the snapshot's `queued` is the accounting view).
    fn queue_len(&self) -> usize {
        self.queue.len()
    }

    #[getter]
    fn max_queue_size(&self) -> usize {
        self.queue.capacity()
    }

    #[getter]
    fn max_export_batch_size(&self) -> usize {
        self.max_export_batch_size
    }

    #[getter]
    fn schedule_delay_millis(&self) -> f64 {
        self.schedule_delay.as_secs_f64() * 1000.0
    }

    #[getter]
    fn block_timeout_millis(&self) -> f64 {
        self.block_timeout.as_secs_f64() * 1000.0
    }

    #[getter]
    fn linger_millis(&self) -> Option<f64> {
        self.linger.map(|linger| linger.as_secs_f64() * 1000.0)
    }

    #[getter]
    fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    #[getter]
    fn pid(&self) -> u32 {
        self.pid
    }

    fn __repr__(&self) -> String {
        let s = self.counters.snapshot();
        format!(
            "BatchCore(max_queue_size={}, schedule_delay_millis={}, max_export_batch_size={}, \
             linger_millis={:?}, enqueued={}, exported={}, queued={}, in_flight={}, dropped={}, shutdown={})",
            self.queue.capacity(),
            self.schedule_delay_millis(),
            self.max_export_batch_size,
            self.linger_millis(),
            s.enqueued,
            s.exported,
            s.queued,
            s.in_flight,
            s.dropped_total(),
            self.is_shutdown(),
        )
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for held in [&self.on_fork, &self.pause] {
            if let Ok(guard) = held.try_lock() {
                if let Some(callback) = guard.as_ref() {
                    visit.call(callback)?;
                }
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        locked(&self.on_fork).take();
        locked(&self.pause).take();
    }
}
