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
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::thread;
use std::time::Duration;

pub trait BatchReader {
    /// Reads spans just taken into the batch being filled; an error is one that interrupted the
    /// reading thread (a Ctrl-C), raised after every span was read or counted.
    fn read(&mut self, py: Python<'_>, spans: Vec<Py<PyAny>>) -> PyResult<()>;

    /// Completes the batch: the object its export settles, and how many of its spans the
    /// reader left out, by reason. The reader starts the next batch empty.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, LeftOut)>;

    /// Drops the batch being filled, which will never be sent: how many of its spans the
    /// reader had left out, by reason. The reader starts the next batch empty.
    fn discard(&mut self) -> LeftOut;

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

    fn discard(&mut self) -> LeftOut {
        // On a detached thread these references are leaked, not freed (no reference pool: see
        // .cargo/config.toml); only when a lane is abandoned, a batch at most.
        self.0.clear();
        LeftOut::default()
    }
}

/// The lane a batch is filled for, as far as its open batch needs to know: whether shutdown
/// gave up on it, and where the spans it held then are counted.
pub trait Lane {
    /// Shutdown's deadline passed with the worker stuck: nothing read into the batch goes out.
    fn abandoned(&self) -> bool;

    /// `held` spans read into a batch given up on were dropped; the reader had left out
    /// `left_out` of them.
    fn drop_held(&self, held: usize, left_out: LeftOut);
}

/// The batch a lane is filling, with the spans read into it and not yet handed out.
///
/// The worker fills it; for a reader that also reads on the threads that end spans
/// (`read_ahead.rs`), so do they, under the same lock. What the reader calls may run Python
/// code, during which the interpreter can pass the GIL to another thread while the lock is
/// held: so a thread that holds the GIL never blocks on the lock (see `lock`).
///
/// Once its lane is abandoned, whichever thread holds the batch drops what it holds as it lets
/// go (`Filling`'s `drop`): shutdown, which holds the GIL, cannot wait for a thread that may
/// be reading a span whose property never returns.
pub struct OpenBatch<R> {
    reader: Mutex<R>,
    /// Spans read into the batch: changed under the lock, read without it.
    held: AtomicUsize,
}

/// Yields before `OpenBatch::lock` starts sleeping: the holder is usually a thread reading one
/// chunk. Past that it is in slow Python code (a property doing I/O), and yielding alone kept
/// a core busy for as long: 0.91 s of process CPU in a 1.01 s wait, with these naps 0.02-0.03 s.
/// The naps cost nothing measurable where threads contend for the batch (8,000 spans through
/// the read-ahead path, debug build, µs of CPU per span: 1 thread 17.7-19.5 yielding only,
/// 18.0-18.5 with naps; 4 threads 17.7-18.3 and 17.8-18.9).
const YIELDS: u32 = 16;
const FIRST_NAP: Duration = Duration::from_micros(10);
const MAX_NAP: Duration = Duration::from_millis(1);

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
    /// one lets go of the GIL, which the holder may be waiting for, yielding, then napping.
    pub fn lock<'a>(&'a self, py: Python<'_>, lane: &'a (dyn Lane + Sync)) -> Filling<'a, R> {
        let (mut yields, mut nap) = (0, FIRST_NAP);
        loop {
            if let Some(filling) = self.try_lock(lane) {
                return filling;
            }
            if yields < YIELDS {
                yields += 1;
                crate::exit_gate::detach(py, thread::yield_now);
            } else {
                crate::exit_gate::detach(py, || thread::sleep(nap));
                nap = (nap * 2).min(MAX_NAP);
            }
        }
    }

    /// The batch, for a thread detached from the interpreter (the holder never waits for it).
    pub fn lock_detached<'a>(&'a self, lane: &'a (dyn Lane + Sync)) -> Filling<'a, R> {
        self.filling(locked(&self.reader), lane)
    }

    /// The batch if no other thread holds it (nor this one: it never waits for itself).
    pub fn try_lock<'a>(&'a self, lane: &'a (dyn Lane + Sync)) -> Option<Filling<'a, R>> {
        self.try_reader().map(|guard| self.filling(guard, lane))
    }

    /// The reader if no other thread holds it, to look at (the garbage collector's traversal):
    /// letting go of it drops nothing.
    pub fn try_reader(&self) -> Option<MutexGuard<'_, R>> {
        match self.reader.try_lock() {
            Ok(guard) => Some(guard),
            // Our readers leave nothing half-written that a panic could expose.
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Drops what the batch holds, if its lane is abandoned and no other thread holds the batch
    /// (that thread does it as it lets go). Returns how many spans this call dropped.
    pub fn drop_if_abandoned(&self, lane: &(dyn Lane + Sync)) -> usize {
        // Pairs with the fence in `Filling::drop`: either this thread finds the batch free, or
        // the holder, letting go of it after this fence, sees the lane abandoned.
        fence(Ordering::SeqCst);
        if !lane.abandoned() || self.held() == 0 {
            return 0;
        }
        self.try_lock(lane).map_or(0, |filling| filling.held())
    }

    fn filling<'a>(
        &'a self,
        guard: MutexGuard<'a, R>,
        lane: &'a (dyn Lane + Sync),
    ) -> Filling<'a, R> {
        Filling {
            reader: Some(guard),
            open: self,
            lane,
        }
    }
}

/// The open batch, locked.
pub struct Filling<'a, R: BatchReader> {
    /// Always `Some` until `drop`, which lets go of it before it looks at the lane again.
    reader: Option<MutexGuard<'a, R>>,
    open: &'a OpenBatch<R>,
    lane: &'a (dyn Lane + Sync),
}

impl<R: BatchReader> Filling<'_, R> {
    pub fn held(&self) -> usize {
        self.open.held()
    }

    pub fn reader(&mut self) -> &mut R {
        self.reader.as_mut().expect("held until dropped")
    }

    /// Reads spans just taken off the queue into the batch.
    pub fn read(&mut self, py: Python<'_>, spans: Vec<Py<PyAny>>) -> PyResult<()> {
        let count = spans.len();
        let read = self.reader().read(py, spans);
        self.open.held.fetch_add(count, Ordering::SeqCst);
        read
    }

    /// Completes the batch (see `BatchReader::finish`); the next one starts empty.
    pub fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, LeftOut)> {
        let out = self.reader().finish(py);
        self.open.held.store(0, Ordering::SeqCst);
        out
    }
}

impl<R: BatchReader> Drop for Filling<'_, R> {
    fn drop(&mut self) {
        let Some(mut reader) = self.reader.take() else {
            return;
        };
        let held = self.open.held();
        if held > 0 && self.lane.abandoned() {
            let left_out = reader.discard();
            self.open.held.store(0, Ordering::SeqCst);
            self.lane.drop_held(held, left_out);
        }
        drop(reader);
        // The lane may have been abandoned while this thread held the batch, too late for the
        // look above and too early for shutdown to take the batch: this thread drops it.
        self.open.drop_if_abandoned(self.lane);
    }
}
