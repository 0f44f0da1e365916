//! What the worker reads the spans it takes into: the narrow interface between the lane core
//! and what a batch becomes.
//!
//! The core takes spans off the queue (a chunk at a time while a batch fills, when it reads
//! ahead) and gives each chunk to a reader; when the batch is complete the reader makes the
//! object Python exports. A plain exporter gets the spans as a list (`SpanList`); spanbatch's
//! OTLP exporters get them read into a request as they come (`otlp::reader`).

use crate::counters::LeftOut;
use crate::sync::locked;
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::thread;

pub trait BatchReader {
    /// Reads spans just taken into the batch being filled; an error is one that interrupted the
    /// reading thread (a Ctrl-C), raised after every span was read or counted.
    fn read(&mut self, py: Python<'_>, spans: Vec<Py<PyAny>>) -> PyResult<()>;

    /// Completes the batch: the object its export settles, and how many of its spans the
    /// reader left out, by reason. The reader starts the next batch empty.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, LeftOut)>;

    /// The bytes of the batch being filled, as it will be sent; 0 when not known (a list).
    fn bytes(&self) -> usize {
        0
    }
}

/// The spans of a batch as the list an exporter's `export` gets.
#[derive(Default)]
pub struct SpanList(Vec<Py<PyAny>>);

impl BatchReader for SpanList {
    fn read(&mut self, _py: Python<'_>, mut spans: Vec<Py<PyAny>>) -> PyResult<()> {
        if self.0.is_empty() {
            self.0 = spans;
        } else {
            self.0.append(&mut spans);
        }
        Ok(())
    }

    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, LeftOut)> {
        let list = PyList::new(py, std::mem::take(&mut self.0))?;
        Ok((list.into_any(), LeftOut::default()))
    }
}

/// The batch a lane is filling, with the spans read into it and not yet handed out.
///
/// The worker fills it; for a reader that also reads on the threads that end spans
/// (`read_ahead.rs`), so do they, under the same lock. What the reader calls may run Python
/// code, during which the interpreter can pass the GIL to another thread while the lock is
/// held: so a thread that holds the GIL never blocks on the lock (see `lock`).
pub struct OpenBatch<R> {
    reader: Mutex<R>,
    /// Spans read into the batch: changed under the lock, read without it.
    held: AtomicUsize,
}

impl<R: BatchReader> OpenBatch<R> {
    pub fn new(reader: R) -> Self {
        Self {
            reader: Mutex::new(reader),
            held: AtomicUsize::new(0),
        }
    }

    /// Spans read into the batch, as last published by the thread that read them.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// The batch, for a thread attached to the interpreter: while another thread holds it, this
    /// one lets go of the GIL, which the holder may be waiting for.
    pub fn lock(&self, py: Python<'_>) -> Filling<'_, R> {
        loop {
            if let Some(filling) = self.try_lock() {
                return filling;
            }
            py.detach(thread::yield_now);
        }
    }

    /// The batch, for a thread detached from the interpreter (the holder never waits for it).
    pub fn lock_detached(&self) -> Filling<'_, R> {
        self.filling(locked(&self.reader))
    }

    /// The batch if no other thread holds it (nor this one: it never waits for itself).
    pub fn try_lock(&self) -> Option<Filling<'_, R>> {
        match self.reader.try_lock() {
            Ok(guard) => Some(self.filling(guard)),
            // Our readers leave nothing half-written that a panic could expose.
            Err(TryLockError::Poisoned(poisoned)) => Some(self.filling(poisoned.into_inner())),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    fn filling<'a>(&'a self, guard: MutexGuard<'a, R>) -> Filling<'a, R> {
        Filling {
            reader: guard,
            held: &self.held,
        }
    }
}

/// The open batch, locked.
pub struct Filling<'a, R> {
    reader: MutexGuard<'a, R>,
    held: &'a AtomicUsize,
}

impl<R: BatchReader> Filling<'_, R> {
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    pub fn reader(&mut self) -> &mut R {
        &mut self.reader
    }

    /// Reads spans just taken off the queue into the batch.
    pub fn read(&mut self, py: Python<'_>, spans: Vec<Py<PyAny>>) -> PyResult<()> {
        let count = spans.len();
        let read = self.reader.read(py, spans);
        self.held.fetch_add(count, Ordering::SeqCst);
        read
    }

    /// Completes the batch (see `BatchReader::finish`); the next one starts empty.
    pub fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, LeftOut)> {
        let out = self.reader.finish(py);
        self.held.store(0, Ordering::SeqCst);
        out
    }
}
