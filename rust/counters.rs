//! Exact span accounting with monotonic atomic counters.
//!
//! Every span moves forward through stages and each move bumps exactly one
//! monotonic counter: accepted (`enqueued`), then either dropped from the queue
//! (`queue_full`, `shutdown`, `fork`) or taken by the worker (`taken`), then finished
//! (`exported`, `spilled`, `export_failed`, `unencodable`, `too_large`, or `shutdown` for spans
//! taken into a batch that shutdown gave up on before it went out). The gauges
//! `queued` and `in_flight` are derived from those counters. A snapshot reads the later stages first, so whatever the
//! other threads do meanwhile, the figures it returns describe a state the
//! spans really passed through: no gauge is negative and
//! `enqueued == exported + spilled + queued + in_flight + dropped` holds exactly.

use crate::drop_reasons::{DropReason, REASONS};
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};

/// The spans of a batch its encoder left out of the request, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeftOut {
    /// Spans it could not read.
    pub unencodable: u64,
    /// Spans over the request size limit on their own.
    pub too_large: u64,
}

impl LeftOut {
    /// `n` spans the encoder could not read, none too large.
    pub const fn unreadable(n: u64) -> Self {
        Self {
            unencodable: n,
            too_large: 0,
        }
    }

    pub const fn total(self) -> u64 {
        self.unencodable + self.too_large
    }

    /// With `more` unencodable spans, as the export loop counts them for a list it encoded.
    #[must_use]
    pub const fn saturating_add(self, more: u64) -> Self {
        Self {
            unencodable: self.unencodable.saturating_add(more),
            too_large: self.too_large,
        }
    }

    /// Never more than the `spans` of the batch: too-large spans are counted first (they
    /// are known exactly), unencodable ones up to what is left.
    #[must_use]
    pub fn at_most(self, spans: u64) -> Self {
        let too_large = self.too_large.min(spans);
        Self {
            unencodable: self.unencodable.min(spans - too_large),
            too_large,
        }
    }
}

/// The live counters of one lane.
///
/// Producers and the worker write different counters; padding keeps them on different
/// cache lines so the worker's updates do not slow every `on_end`. Boxed because the
/// padding's alignment is more than a Python object's allocation guarantees.
#[derive(Debug, Default)]
pub struct Counters {
    enqueued: Box<CachePadded<AtomicU64>>,
    worker: Box<CachePadded<WorkerCounters>>,
    dropped: Box<CachePadded<[AtomicU64; REASONS]>>,
}

#[derive(Debug, Default)]
struct WorkerCounters {
    taken: AtomicU64,
    exported: AtomicU64,
    spilled: AtomicU64,
    batches: AtomicU64,
    export_errors: AtomicU64,
    retried: AtomicU64,
    /// Taken spans dropped at shutdown, never handed out: reported with `shutdown`, but a
    /// finished stage (they left the queue as `taken`).
    abandoned: AtomicU64,
}

/// A consistent, immutable reading of [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub enqueued: u64,
    pub exported: u64,
    /// Spans an exporter stored on disk (its spill) instead of sending them: settled, not exported.
    pub spilled: u64,
    pub queued: u64,
    pub in_flight: u64,
    pub dropped: [u64; REASONS],
    pub batches: u64,
    pub export_errors: u64,
    /// Export attempts repeated after a failure (not spans: a batch retried twice counts 2).
    pub retried: u64,
    /// Of `dropped`'s `shutdown`, the spans taken off the queue (read ahead into a request) before shutdown
    /// gave up on them: they were in flight, so the processed metric has already counted them.
    pub abandoned: u64,
}

impl Snapshot {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    pub fn dropped_by(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize]
    }
}

impl Counters {
    /// A span was accepted by `on_end`; returns how many were accepted before it.
    pub fn enqueue(&self) -> u64 {
        self.enqueued.fetch_add(1, Ordering::AcqRel)
    }

    /// Spans accepted so far, dropped ones and those lost before the queue too: every arrival.
    pub fn enqueued(&self) -> u64 {
        self.enqueued.load(Ordering::Acquire)
    }

    /// `n` spans left the pipeline for `reason`; returns the count for that reason before them.
    pub fn drop_spans(&self, reason: DropReason, n: u64) -> u64 {
        self.dropped[reason as usize].fetch_add(n, Ordering::AcqRel)
    }

    /// `n` spans that never reached this queue are accepted and dropped at once for `reason`.
    pub fn lost(&self, reason: DropReason, n: u64) {
        // Accepted first: a snapshot, which reads drops before arrivals, never sees more dropped.
        self.enqueued.fetch_add(n, Ordering::AcqRel);
        self.drop_spans(reason, n);
    }

    /// The worker took `n` spans off the queue to export them.
    pub fn take(&self, n: u64) {
        self.worker.taken.fetch_add(n, Ordering::AcqRel);
    }

    /// An export of `n` taken spans returned; the encoder had left `left_out` of them out, and the
    /// exporter stored `spilled` of the rest on disk (whatever it returned: those are on disk). A failed
    /// export had `delivered` of the others accepted by the backend before it failed (parts of a
    /// request cut to a byte limit): those count as exported, only the rest as failed.
    pub fn finish(&self, n: u64, left_out: LeftOut, success: bool, spilled: u64, delivered: u64) {
        let left_out = self.drop_left_out(n, left_out);
        let spilled = spilled.min(n - left_out);
        if spilled > 0 {
            self.worker.spilled.fetch_add(spilled, Ordering::AcqRel);
        }
        let rest = n - left_out - spilled;
        let delivered = if success { rest } else { delivered.min(rest) };
        if delivered > 0 {
            self.worker.exported.fetch_add(delivered, Ordering::AcqRel);
        }
        if !success {
            self.drop_spans(DropReason::ExportFailed, rest - delivered);
            self.worker.export_errors.fetch_add(1, Ordering::AcqRel);
        }
        self.worker.batches.fetch_add(1, Ordering::AcqRel);
    }

    /// `n` taken spans, of which the encoder had left out `left_out`, were dropped before they
    /// went out: their lane was abandoned at shutdown.
    pub fn drop_held(&self, n: u64, left_out: LeftOut) {
        let rest = n - self.drop_left_out(n, left_out);
        self.worker.abandoned.fetch_add(rest, Ordering::AcqRel);
    }

    /// Counts what the encoder left out of `n` taken spans, by reason; returns how many.
    fn drop_left_out(&self, n: u64, left_out: LeftOut) -> u64 {
        let left_out = left_out.at_most(n);
        for (reason, spans) in [
            (DropReason::Unencodable, left_out.unencodable),
            (DropReason::TooLarge, left_out.too_large),
        ] {
            if spans > 0 {
                self.drop_spans(reason, spans);
            }
        }
        left_out.total()
    }

    /// A failed export is about to be attempted again. Not a stage: the batch stays in flight.
    pub fn retry(&self) {
        self.worker.retried.fetch_add(1, Ordering::AcqRel);
    }

    /// Exports that failed and attempts made again: a send with either says nothing of how fast
    /// the backend is (`send_time.rs`).
    pub fn setbacks(&self) -> u64 {
        self.worker.export_errors.load(Ordering::Acquire)
            + self.worker.retried.load(Ordering::Acquire)
    }

    pub fn snapshot(&self) -> Snapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Acquire);
        // Finished stages first, then the worker's take, then queue exits, then arrivals.
        let batches = load(&self.worker.batches);
        let export_errors = load(&self.worker.export_errors);
        let retried = load(&self.worker.retried);
        let exported = load(&self.worker.exported);
        let spilled = load(&self.worker.spilled);
        let abandoned = load(&self.worker.abandoned);
        let mut dropped = [0; REASONS];
        for reason in DropReason::ALL.into_iter().filter(|r| !r.leaves_queue()) {
            dropped[reason as usize] = load(&self.dropped[reason as usize]);
        }
        let taken = load(&self.worker.taken);
        for reason in DropReason::ALL.into_iter().filter(|r| r.leaves_queue()) {
            dropped[reason as usize] = load(&self.dropped[reason as usize]);
        }
        let enqueued = load(&self.enqueued);
        let finished = exported
            + spilled
            + abandoned
            + DropReason::ALL
                .into_iter()
                .filter(|r| !r.leaves_queue())
                .map(|r| dropped[r as usize])
                .sum::<u64>();
        let left_queue = taken
            + DropReason::ALL
                .into_iter()
                .filter(|r| r.leaves_queue())
                .map(|r| dropped[r as usize])
                .sum::<u64>();
        dropped[DropReason::Shutdown as usize] += abandoned;
        Snapshot {
            enqueued,
            exported,
            spilled,
            queued: enqueued - left_queue,
            in_flight: taken - finished,
            dropped,
            batches,
            export_errors,
            retried,
            abandoned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    fn balanced(s: &Snapshot) -> bool {
        s.enqueued == s.exported + s.spilled + s.queued + s.in_flight + s.dropped_total()
    }

    #[test]
    fn the_table_lists_every_reason_once_in_index_order() {
        for (index, reason) in DropReason::ALL.into_iter().enumerate() {
            assert_eq!(reason as usize, index);
        }
        let mut names: Vec<_> = DropReason::ALL.map(DropReason::name).into();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REASONS);
        assert!(DropReason::QueueFull.leaves_queue() && !DropReason::ExportFailed.leaves_queue());
    }

    #[test]
    fn stages_move_spans_between_gauges() {
        let c = Counters::default();
        for _ in 0..10 {
            c.enqueue();
        }
        c.drop_spans(DropReason::QueueFull, 2);
        c.take(5);
        let s = c.snapshot();
        assert_eq!((s.queued, s.in_flight), (3, 5));
        c.finish(3, LeftOut::unreadable(1), true, 0, 0);
        c.retry();
        c.finish(2, LeftOut::unreadable(0), false, 0, 0);
        let s = c.snapshot();
        assert_eq!((s.exported, s.queued, s.in_flight), (2, 3, 0));
        assert_eq!(s.dropped_by(DropReason::ExportFailed), 2);
        assert_eq!(s.dropped_by(DropReason::QueueFull), 2);
        assert_eq!(s.dropped_by(DropReason::Unencodable), 1);
        assert_eq!((s.batches, s.export_errors, s.retried), (2, 1, 1));
        assert!(balanced(&s));
    }

    #[test]
    fn taken_spans_dropped_at_shutdown_leave_in_flight_as_shutdown_drops() {
        let c = Counters::default();
        for _ in 0..10 {
            c.enqueue();
        }
        c.take(8);
        c.drop_spans(DropReason::Shutdown, 2);
        c.drop_held(5, LeftOut::unreadable(1));
        let s = c.snapshot();
        assert_eq!((s.queued, s.in_flight), (0, 3));
        assert_eq!(s.dropped_by(DropReason::Shutdown), 6);
        assert_eq!(s.abandoned, 4); // of those 6, the taken ones: the metrics counted them in flight
        assert_eq!(s.dropped_by(DropReason::Unencodable), 1);
        assert!(balanced(&s));
    }

    #[test]
    fn spans_left_out_by_the_encoder_are_dropped_whatever_the_export_did() {
        let c = Counters::default();
        for _ in 0..6 {
            c.enqueue();
        }
        c.take(6);
        c.finish(3, LeftOut::unreadable(3), true, 0, 0);
        c.finish(3, LeftOut::unreadable(9), false, 0, 0); // never more than the batch
        let s = c.snapshot();
        assert_eq!((s.exported, s.in_flight), (0, 0));
        assert_eq!(s.dropped_by(DropReason::Unencodable), 6);
        assert_eq!(s.dropped_by(DropReason::ExportFailed), 0);
        assert!(balanced(&s));
    }

    #[test]
    fn spilled_spans_are_settled_apart_from_exported_and_failed_ones() {
        let c = Counters::default();
        for _ in 0..10 {
            c.enqueue();
        }
        c.take(10);
        c.finish(6, LeftOut::unreadable(1), true, 2, 0);
        // A batch that failed after part of it was spilled: those spans are on disk, not lost.
        c.finish(4, LeftOut::unreadable(0), false, 9, 0); // never more than the spans left in
        let s = c.snapshot();
        assert_eq!((s.exported, s.spilled, s.in_flight), (3, 6, 0));
        assert_eq!(s.dropped_by(DropReason::ExportFailed), 0);
        assert!(balanced(&s));
    }

    #[test]
    fn the_spans_a_failed_export_delivered_before_it_failed_count_as_exported() {
        let c = Counters::default();
        for _ in 0..20 {
            c.enqueue();
        }
        c.take(20);
        c.finish(10, LeftOut::unreadable(1), false, 2, 3);
        c.finish(10, LeftOut::unreadable(0), false, 0, 99); // never more than the spans left in
        let s = c.snapshot();
        assert_eq!((s.exported, s.spilled, s.in_flight), (13, 2, 0));
        assert_eq!(s.dropped_by(DropReason::ExportFailed), 4);
        assert_eq!(s.export_errors, 2);
        assert!(balanced(&s));
    }

    #[test]
    fn spans_over_the_size_limit_have_their_own_reason() {
        let c = Counters::default();
        for _ in 0..10 {
            c.enqueue();
        }
        c.take(10);
        let left_out = LeftOut {
            unencodable: 1,
            too_large: 2,
        };
        c.finish(6, left_out, true, 0, 0);
        // A failed export: its too-large spans are still too_large, the rest export_failed.
        c.finish(4, left_out.saturating_add(1), false, 0, 0);
        let s = c.snapshot();
        assert_eq!(s.exported, 3);
        assert_eq!(s.dropped_by(DropReason::TooLarge), 4);
        assert_eq!(s.dropped_by(DropReason::Unencodable), 3);
        assert_eq!(s.dropped_by(DropReason::ExportFailed), 0);
        assert!(balanced(&s));
        assert_eq!(
            LeftOut {
                unencodable: 5,
                too_large: 7
            }
            .at_most(6),
            LeftOut {
                unencodable: 0,
                too_large: 6
            }
        );
    }

    #[test]
    fn snapshots_balance_while_many_threads_move_spans() {
        let c = Arc::new(Counters::default());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Each producer owns its spans' whole life, in stage order, as the lane does.
        let producers: Vec<_> = (0..6)
            .map(|i| {
                let c = Arc::clone(&c);
                thread::spawn(move || {
                    for n in 0..20_000u64 {
                        c.enqueue();
                        match (n + i) % 5 {
                            0 => {
                                c.drop_spans(DropReason::QueueFull, 1);
                            }
                            1 => {
                                c.take(1);
                                c.finish(1, LeftOut::unreadable(0), false, 0, 0);
                            }
                            2 => {
                                c.enqueue(); // a second span, spilled
                                c.take(2);
                                c.finish(2, LeftOut::unreadable(1), true, 1, 0);
                            }
                            _ => {
                                c.take(1);
                                c.finish(1, LeftOut::unreadable(0), true, 0, 0);
                            }
                        }
                    }
                })
            })
            .collect();
        let reader = {
            let (c, stop) = (Arc::clone(&c), Arc::clone(&stop));
            thread::spawn(move || {
                let mut reads = 0u64;
                // At least one read even if the producers finish before this thread runs.
                loop {
                    let s = c.snapshot();
                    assert!(balanced(&s), "unbalanced snapshot {s:?}");
                    reads += 1;
                    if stop.load(Ordering::Acquire) {
                        break reads;
                    }
                }
            })
        };
        for p in producers {
            p.join().unwrap();
        }
        stop.store(true, Ordering::Release);
        assert!(reader.join().unwrap() > 0);
        let s = c.snapshot();
        assert_eq!(s.enqueued, 144_000);
        assert_eq!((s.queued, s.in_flight, s.spilled), (0, 0, 24_000));
        assert_eq!(s.dropped_by(DropReason::QueueFull), 24_000);
        assert_eq!(s.dropped_by(DropReason::Unencodable), 24_000);
        assert!(balanced(&s));
    }
}
