//! `BatchCore`'s Python methods: what the processor, its lanes and its worker call.
//!
//! The one place where the lane core meets a `BatchReader` from `otlp/`: `next_requests`.

use crate::batching::{millis, Schedule};
use crate::core::{PyBatchCore, Wait};
use crate::drop_news::PyDropNews;
use crate::drop_reasons::DropReason;
use crate::fork::ForkWatch;
use crate::queue::{DropPolicy, SpanQueue};
use crate::reader::{OpenBatch, SpanList};
use crate::sampled::is_sampled;
use crate::stats::PyStats;
use crate::waits;
use crate::wakeup::FlushWait;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

#[pymethods]
impl PyBatchCore {
    #[new]
    #[pyo3(signature = (
        max_queue_size, schedule_delay_millis, max_export_batch_size, *,
        drop_policy = "oldest", linger_millis = None, block_timeout_millis = 0.0, on_fork = None,
        news = None, pause = None,
    ))]
    #[allow(clippy::too_many_arguments)] // the Python constructor's arguments, one by one
    fn py_new(
        max_queue_size: usize,
        schedule_delay_millis: f64,
        max_export_batch_size: usize,
        drop_policy: &str,
        linger_millis: Option<f64>,
        block_timeout_millis: f64,
        on_fork: Option<Py<PyAny>>,
        news: Option<Bound<'_, PyDropNews>>,
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
        let policy = DropPolicy::parse(drop_policy).ok_or_else(|| {
            PyValueError::new_err(format!(
                "drop_policy must be 'oldest', 'newest' or 'block', not {drop_policy:?}."
            ))
        })?;
        let schedule = Schedule::new(
            max_queue_size,
            max_export_batch_size,
            millis(schedule_delay_millis),
            linger_millis.map(millis),
        );
        Ok(Self::new(
            SpanQueue::new(max_queue_size, policy),
            schedule,
            millis(block_timeout_millis),
            ForkWatch::new(on_fork),
            news.map(|news| Arc::clone(&news.get().news)),
            pause,
        ))
    }

    /// The hot path: sampled check, push, accounting, and a wake-up only when worth it.
    fn on_end(&self, py: Python<'_>, span: &Bound<'_, PyAny>) -> PyResult<()> {
        if is_sampled(span)? {
            self.push(py, span)?;
        }
        Ok(())
    }

    /// The push for items without a sampled flag (log records). One emitted on this lane's
    /// own export thread is counted and dropped (`export_thread`): it never waits, never recurses.
    /// `wait=False`: never wait for room, whatever the drop policy (the caller holds a lock the
    /// worker may need, such as a logging handler's).
    #[pyo3(name = "on_emit", signature = (record, wait = true))]
    fn py_on_emit(&self, py: Python<'_>, record: &Bound<'_, PyAny>, wait: bool) -> PyResult<()> {
        self.on_emit(py, record, Wait::Here.only_if(wait)).map(drop)
    }

    /// Accounts for spans a forked child found queued but cannot export (dropped: `fork`).
    fn count_lost_to_fork(&self, count: u64) {
        self.counters.lost(DropReason::Fork, count);
    }

    /// Like `next_batches`, for an exporter with a `SpanEncoder` (or `LogEncoder`): each batch
    /// comes read into a `SpanRequest` (`LogRequest`), read `read_ahead` items at a time while it filled.
    fn next_requests<'py>(
        &self,
        py: Python<'py>,
        encoder: &Bound<'py, PyAny>,
        max_batches: usize,
        read_ahead: usize,
    ) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
        let (open, chunk) = self.requests_with(py, encoder, self.schedule.chunk(read_ahead))?;
        let requests = self.read_batches(py, open, max_batches.max(1), chunk)?;
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
    ) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
        // Each call starts an empty batch (its last is handed out whole), for this thread alone.
        let open = OpenBatch::new(SpanList::default());
        let whole = self.schedule.batch_size;
        let batches = self.read_batches(py, &open, max_batches.max(1), whole)?;
        Ok((!batches.is_empty()).then_some(batches))
    }

    /// Reports that the export of `batch`, as `next_batches` or `next_requests` returned it,
    /// returned. It settles the spans handed out in it, whatever the exporter did to the list;
    /// `left_out` of them (and those its request left out) were left out by the encoder, and
    /// the exporter stored `spilled` of the others on disk (its spill) rather than sending them, and,
    /// when it failed, the backend had accepted `delivered` of the rest before (parts of a request).
    #[pyo3(signature = (batch, success, left_out = 0, spilled = 0, delivered = 0))]
    fn finish_batch(
        &self,
        batch: &Bound<'_, PyAny>,
        success: bool,
        left_out: u64,
        spilled: u64,
        delivered: u64,
    ) -> PyResult<()> {
        let settled = self.with_flushes(|flushes| {
            let Some(handed) = flushes.settle(batch.as_ptr() as usize) else {
                return false;
            };
            // Counted before a flush can see the batch settled and return.
            let left_out = handed.left_out.saturating_add(left_out);
            self.counters
                .finish(handed.spans, left_out, success, spilled, delivered);
            true
        });
        if settled {
            Ok(())
        } else {
            Err(PyValueError::new_err(
                "finish_batch: not a batch this core handed out, or one already finished.",
            ))
        }
    }

    /// Marks the calling thread as one that takes or exports this core's batches.
    #[pyo3(name = "enter_export_thread")]
    fn py_enter_export_thread(&self) {
        self.enter_export_thread();
    }

    /// Unmarks the calling thread (an async exporter's pool thread, ending): see `enter_export_thread`.
    #[pyo3(name = "leave_export_thread")]
    fn py_leave_export_thread(&self) {
        self.leave_export_thread();
    }

    /// Whether the calling thread takes or exports this core's batches.
    #[pyo3(name = "on_export_thread")]
    fn py_on_export_thread(&self) -> bool {
        self.on_export_thread()
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
        !crate::exit_gate::detach(py, || self.wakeup.pause(deadline, || self.stopping()))
    }

    /// Takes a flush ticket for the spans queued now, and wakes the worker to take them.
    fn request_flush(&self) -> u64 {
        let (ticket, wants) = self.with_flushes(|flushes| {
            let ticket = flushes.request(self.queue.len());
            (ticket, flushes.wants_batch())
        });
        if wants {
            self.wakeup.notify_worker();
        }
        ticket
    }

    /// Waits, detached, until `ticket` is done or `timeout_millis` passes; Ctrl-C interrupts it.
    /// On 3.11 and later a greenlet waits in Python instead, looking with `flush_outcome` (see
    /// `_lane.wait_flush`).
    fn wait_flush(&self, py: Python<'_>, ticket: u64, timeout_millis: f64) -> PyResult<bool> {
        let deadline = Instant::now() + millis(timeout_millis);
        let pause = self.pause(py);
        // A flush given up by shutdown ends the wait at once, as a completed one does.
        waits::interruptible(py, deadline, pause.as_ref(), |until| {
            self.wakeup.wait_flush(ticket, until) != FlushWait::Pending
        })?;
        Ok(self.wakeup.flush_state(ticket) == FlushWait::Done)
    }

    /// `ticket`'s flush, looked at without waiting: True done, False given up by shutdown (it
    /// never will be), None not yet.
    fn flush_outcome(&self, ticket: u64) -> Option<bool> {
        match self.wakeup.flush_state(ticket) {
            FlushWait::Done => Some(true),
            FlushWait::GivenUp => Some(false),
            FlushWait::Pending => None,
        }
    }

    /// Stops accepting spans and wakes the worker to drain; false if already shut down.
    fn begin_shutdown(&self, py: Python<'_>) -> bool {
        let first = !self.shutdown.swap(true, Ordering::SeqCst);
        self.handoff.lane_stops();
        if first {
            self.wakeup.notify_worker();
            self.room.notify();
        }
        self.wait_for_producers(py);
        first
    }

    /// Once shut down: a core to take this one's place, without its ring (see `successor_at_rest`).
    #[pyo3(name = "at_rest")]
    fn py_at_rest(&self, py: Python<'_>) -> PyResult<PyBatchCore> {
        if !self.shutdown.load(Ordering::Acquire) {
            return Err(PyValueError::new_err("at_rest: the core is not shut down."));
        }
        Ok(self.successor_at_rest(py))
    }

    /// Gives up on the queued spans and those read into the open request (counted as dropped
    /// at shutdown); returns how many. A thread still reading into the request (a span's
    /// property that blocks) drops what it holds as it lets go, counted then.
    fn abandon(&self) -> u64 {
        // SeqCst: a thread letting go of the open request after this sees it (`reader.rs`).
        self.abandoned.store(true, Ordering::SeqCst);
        self.handoff.lane_stops();
        let mut spans = Vec::new();
        let count = self.queue.pop_into(usize::MAX, &mut spans) as u64;
        self.counters.drop_spans(DropReason::Shutdown, count);
        let count = count + self.read_ahead.drop_if_abandoned(self) as u64;
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
        self.schedule.batch_size
    }

    #[getter]
    fn schedule_delay_millis(&self) -> f64 {
        self.schedule.delay.as_secs_f64() * 1000.0
    }

    #[getter]
    fn block_timeout_millis(&self) -> f64 {
        self.block_timeout.as_secs_f64() * 1000.0
    }

    #[getter]
    fn linger_millis(&self) -> Option<f64> {
        self.schedule
            .linger
            .map(|linger| linger.as_secs_f64() * 1000.0)
    }

    #[getter]
    fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    #[getter]
    fn pid(&self) -> u32 {
        self.fork.pid()
    }

    fn __repr__(&self) -> String {
        let s = self.counters.snapshot();
        format!(
            "BatchCore(max_queue_size={}, schedule_delay_millis={}, max_export_batch_size={}, \
             linger_millis={:?}, enqueued={}, exported={}, queued={}, in_flight={}, dropped={}, shutdown={})",
            self.queue.capacity(),
            self.schedule_delay_millis(),
            self.schedule.batch_size,
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
        self.traverse(&visit)
    }

    fn __clear__(&self) {
        self.clear();
    }
}
