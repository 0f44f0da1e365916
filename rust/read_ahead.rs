//! Spans read into the open request on the application thread that ends them, a chunk at a time.
//!
//! A span waiting in the queue is a live Python object: every few dozen spans a worker has
//! not taken yet set off a young-generation collection, which promotes them; their survivors
//! reach the old generation and trigger full collections of the whole heap. The worker cannot
//! take them sooner: it waits for the GIL, behind a busy application thread, for up to the
//! switch interval. So once the queue holds a chunk, the application thread that ended the
//! span reads that chunk itself, holding the GIL it already has: spans die young, as they
//! would without a processor, and the worker takes the GIL only to complete a batch and hand
//! it to the exporter (a complete batch makes the hand-over urgent, see `core.rs`).
//!
//! Measured (end to end over OTLP/HTTP, default settings, chunks of 32; per 10,000 spans,
//! young / middle / full collections, and process CPU per span): read by the worker, 1 thread
//! ending 20,000 spans 187 / 17 / 1.5 and 20-21 µs, 4 threads ending 2,500 each 175 / 16 /
//! 1.3 and 21-22 µs; read here, 2-4 / 0.2-0.3 / 0 and 15-16 µs, 8-18 / 0.7-1.3 / 0 and 16 µs.
//! With no processor at all those loops cost 13-15 µs per span.
//!
//! Only for a lane whose worker reads spans with spanbatch's span encoder (`next_requests`):
//! an exporter that takes spans gets them as it always did, and log records are read by the
//! worker. A thread that finds the batch held (by the worker, or another application thread)
//! does not wait; the next span's `on_end` tries again.
//!
//! Only while every span ended in the lane is of the one class whose reading runs no Python
//! code (the SDK's `ReadableSpan`, read from its instance dict): Python code run mid-read, with
//! the batch locked, could run a signal handler that flushes (and waits for this very read),
//! or, on a daemon thread at exit, be unwound through these Rust frames, which aborts. The
//! first span of another class (a subclass with properties) hands reading to the worker for good.

use crate::batching::Step;
use crate::core::PyBatchCore;
use crate::otlp::reader::RequestReader;
use crate::otlp::types::Types;
use crate::reader::{Lane, OpenBatch};
use pyo3::prelude::*;
use pyo3::types::PyType;
use pyo3::{PyTraverseError, PyVisit};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::OnceLock;

pub struct ReadAhead {
    open: OpenBatch<RequestReader>,
    /// Spans an application thread reads at a time; 0 until a worker reads spans here.
    chunk: AtomicUsize,
    /// The process whose worker reads here: a child forked without Python's hooks reads nothing.
    pid: AtomicU32,
    /// The class application threads may read (see the module's comment); set by the worker.
    pure: OnceLock<Py<PyType>>,
    /// A span of another class was ended in this lane: only the worker reads from now on.
    impure: AtomicBool,
}

impl Default for ReadAhead {
    fn default() -> Self {
        Self {
            open: OpenBatch::new(RequestReader::default()),
            chunk: AtomicUsize::new(0),
            pid: AtomicU32::new(0),
            pure: OnceLock::new(),
            impure: AtomicBool::new(false),
        }
    }
}

impl ReadAhead {
    /// Whether application threads may read spans here (else `read_ahead_here` does nothing).
    #[inline]
    pub fn reads_here(&self) -> bool {
        self.chunk.load(Ordering::Relaxed) != 0 && !self.impure.load(Ordering::Relaxed)
    }

    /// Drops what the open request holds, unless a thread holds it (that thread does); returns
    /// how many spans this call dropped.
    pub fn drop_if_abandoned(&self, lane: &(dyn Lane + Sync)) -> usize {
        self.open.drop_if_abandoned(lane)
    }

    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        match self.open.try_reader() {
            Some(reader) => reader.traverse(visit),
            None => Ok(()),
        }
    }
}

impl PyBatchCore {
    /// The open request the worker fills with `encoder`; with a span encoder, application
    /// threads read `chunk` spans at a time into it from now on. Returns the worker's chunk:
    /// a whole batch when they read ahead, else `chunk`.
    pub(crate) fn requests_with(
        &self,
        py: Python<'_>,
        encoder: &Bound<'_, PyAny>,
        chunk: usize,
    ) -> PyResult<(&OpenBatch<RequestReader>, usize)> {
        let open = &self.read_ahead.open;
        let spans = {
            let mut filling = open.lock(py, self);
            let held = filling.held() > 0;
            filling.reader().use_encoder(encoder, held)?
        };
        if !spans {
            return Ok((open, chunk));
        }
        let pure = &Types::get(py)?.readable_span;
        self.read_ahead.pure.get_or_init(|| pure.clone_ref(py));
        self.read_ahead
            .pid
            .store(std::process::id(), Ordering::Relaxed);
        self.read_ahead.chunk.store(chunk, Ordering::Release);
        Ok((open, self.schedule.batch_size))
    }

    /// On an application thread, after a push: reads a chunk into the open request when one
    /// is queued and the batch is not complete with it (completing it is the worker's).
    /// Returns whether a complete batch waits for the worker; an error is a Ctrl-C that came
    /// while the chunk was read (it is this thread's to raise, once the chunk is read).
    pub(crate) fn read_ahead_here(&self, py: Python<'_>) -> PyResult<bool> {
        let chunk = self.read_ahead.chunk.load(Ordering::Acquire);
        if chunk == 0 || self.read_ahead.impure.load(Ordering::Acquire) {
            return Ok(false);
        }
        let queued = self.queue.len();
        let batch = self.schedule.batch_size;
        if queued + self.read_ahead.open.held() >= batch {
            return Ok(true);
        }
        if queued < chunk || self.read_ahead.pid.load(Ordering::Relaxed) != std::process::id() {
            return Ok(false);
        }
        let Some(mut filling) = self.read_ahead.open.try_lock(self) else {
            return Ok(false);
        };
        if let Step::Take {
            count,
            ends_batch: false,
        } = self.next_step(filling.held(), chunk)
        {
            let Some(read) = self.calling_python(|| {
                let spans = self.take(count, false);
                filling.read(py, spans)
            }) else {
                return Ok(false);
            };
            // The worker waits for the rest of the batch, which is less now.
            let rest = self.schedule.next_take(filling.held(), batch);
            self.wake_at.store(rest, Ordering::SeqCst);
            read?;
        }
        Ok(false)
    }

    /// Before a span is queued: one of a class whose reading may run Python code ends reading
    /// on application threads for good (see the module's comment). Two loads on the hot path.
    #[inline]
    pub(crate) fn watch_class(&self, span: &Bound<'_, PyAny>) {
        if self.read_ahead.impure.load(Ordering::Relaxed) {
            return;
        }
        if let Some(pure) = self.read_ahead.pure.get() {
            if span.get_type_ptr() != pure.as_ptr().cast() {
                self.read_ahead.impure.store(true, Ordering::Release);
            }
        }
    }
}
