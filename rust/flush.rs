//! What a flush waits for: the spans queued before it, not an empty queue.
//!
//! Spans are numbered in the order the worker takes them off the queue. A flush asked for
//! while `taken` spans have been taken and `queued` wait in the queue gets the mark
//! `taken + queued`: the queue is first in, first out, so every span queued before the call
//! will be numbered below the mark, unless it leaves the queue untaken (evicted, abandoned).
//! The flush is done once every span numbered below its mark is settled. With several export
//! threads batches settle out of order, so that is a low watermark (the first number still
//! out), never a count; and spans queued after the mark (an exporter that ends spans of its
//! own) never hold it up.
//!
//! A batch is known by a key its holder chooses (the address of the object handed to
//! Python), so that the spans it settles are the ones it was handed, whatever the exporter
//! did to the list meanwhile. No pyo3 here: the caller locks, reads the queue, and maps keys.

use crate::counters::LeftOut;
use std::collections::VecDeque;

/// A batch handed to the exporter and not yet settled.
#[derive(Debug)]
struct Out {
    key: usize,
    first: u64,
    spans: u64,
    left_out: LeftOut,
}

/// What a settled batch stood for: `spans` handed out, of which the encoder left out `left_out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handed {
    pub spans: u64,
    pub left_out: LeftOut,
}

#[derive(Debug, Default)]
pub struct Flushes {
    /// Spans taken so far: the number the next one taken gets.
    taken: u64,
    /// The first number of the batch being filled, once a span is taken into it.
    open: Option<u64>,
    out: Vec<Out>,
    last_ticket: u64,
    /// Flushes not done yet, oldest first, as (ticket, mark); marks never decrease.
    waiting: VecDeque<(u64, u64)>,
}

impl Flushes {
    /// A flush asked for now, with `queued` spans in the queue; returns its ticket.
    pub fn request(&mut self, queued: usize) -> u64 {
        self.last_ticket += 1;
        let before = self.waiting.back().map_or(0, |&(_, mark)| mark);
        let mark = before.max(self.taken + queued as u64);
        self.waiting.push_back((self.last_ticket, mark));
        self.last_ticket
    }

    /// The queue was found empty: every span queued before a waiting flush has left it.
    pub fn queue_empty(&mut self) {
        for (_, mark) in &mut self.waiting {
            *mark = (*mark).min(self.taken);
        }
    }

    /// `n` more spans were taken off the queue into the open batch.
    pub fn take(&mut self, n: u64) {
        if n > 0 {
            self.open.get_or_insert(self.taken);
            self.taken += n;
        }
    }

    /// The open batch goes to the exporter under `key`; false if nothing was taken into it.
    pub fn hand_out(&mut self, key: usize, left_out: LeftOut) -> bool {
        let Some(first) = self.open.take() else {
            return false;
        };
        let spans = self.taken - first;
        self.out.push(Out {
            key,
            first,
            spans,
            left_out: left_out.at_most(spans),
        });
        true
    }

    /// The open batch was dropped, never handed out (its lane abandoned at shutdown).
    pub fn drop_open(&mut self) {
        self.open = None;
    }

    /// The batch handed out under `key` is settled; None if no such batch is out.
    pub fn settle(&mut self, key: usize) -> Option<Handed> {
        // The latest: a batch never settled (abandoned) may have left a freed object's key behind.
        let index = self.out.iter().rposition(|out| out.key == key)?;
        let out = self.out.swap_remove(index);
        Some(Handed {
            spans: out.spans,
            left_out: out.left_out,
        })
    }

    /// Whether a waiting flush needs spans still queued or in the open batch.
    pub fn wants_batch(&self) -> bool {
        self.waiting
            .back()
            .is_some_and(|&(_, mark)| mark > self.open.unwrap_or(self.taken))
    }

    /// Removes the flushes now done and returns the latest ticket among them.
    pub fn done(&mut self) -> Option<u64> {
        let settled_below = self
            .out
            .iter()
            .map(|out| out.first)
            .chain(self.open)
            .min()
            .unwrap_or(self.taken);
        let mut last = None;
        while let Some(&(ticket, mark)) = self.waiting.front() {
            if mark > settled_below {
                break;
            }
            self.waiting.pop_front();
            last = Some(ticket);
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes `n` spans and hands them out at once as batch `key`.
    fn batch(f: &mut Flushes, key: usize, n: u64) {
        f.take(n);
        assert!(f.hand_out(key, LeftOut::unreadable(0)));
    }

    #[test]
    fn a_flush_with_nothing_queued_or_out_is_done_at_once() {
        let mut f = Flushes::default();
        let ticket = f.request(0);
        assert!(!f.wants_batch());
        assert_eq!(f.done(), Some(ticket));
        assert_eq!(f.done(), None);
    }

    #[test]
    fn a_flush_waits_for_the_spans_queued_before_it_and_no_more() {
        let mut f = Flushes::default();
        let ticket = f.request(3);
        assert!(f.wants_batch());
        batch(&mut f, 1, 3);
        assert!(
            !f.wants_batch(),
            "spans queued after the flush are not its business"
        );
        assert_eq!(f.done(), None, "the batch is still being exported");
        // The exporter ended a span of its own meanwhile; it is queued after the mark.
        assert_eq!(
            f.settle(1),
            Some(Handed {
                spans: 3,
                left_out: LeftOut::unreadable(0)
            })
        );
        assert_eq!(f.done(), Some(ticket));
    }

    #[test]
    fn batches_settling_out_of_order_complete_a_flush_only_with_all_before_its_mark() {
        let mut f = Flushes::default();
        batch(&mut f, 10, 2); // spans 0..2
        let first = f.request(0); // mark 2
        batch(&mut f, 11, 2); // spans 2..4, taken after the first flush
        let second = f.request(0); // mark 4
        assert_eq!(f.settle(11).map(|h| h.spans), Some(2));
        assert_eq!(f.done(), None, "batch 10, before both marks, is still out");
        assert_eq!(f.settle(10).map(|h| h.spans), Some(2));
        assert_eq!(f.done(), Some(second));

        let mut f = Flushes::default();
        batch(&mut f, 10, 2);
        let first_again = f.request(0);
        batch(&mut f, 11, 2);
        let _second = f.request(0);
        assert_eq!(f.settle(10).map(|h| h.spans), Some(2));
        assert_eq!(
            f.done(),
            Some(first_again),
            "a later batch still out does not hold up an earlier flush"
        );
        assert_eq!(first, first_again);
        assert_eq!(f.done(), None);
    }

    #[test]
    fn spans_read_ahead_into_the_open_batch_hold_a_flush_until_it_is_handed_out_and_settled() {
        let mut f = Flushes::default();
        f.take(4); // read ahead, batch still filling
        let ticket = f.request(1);
        assert!(f.wants_batch());
        f.take(1);
        assert!(
            f.wants_batch(),
            "the open batch holds spans before the mark"
        );
        assert_eq!(f.done(), None);
        assert!(f.hand_out(7, LeftOut::unreadable(2)));
        assert!(!f.wants_batch());
        assert_eq!(f.done(), None);
        assert_eq!(
            f.settle(7),
            Some(Handed {
                spans: 5,
                left_out: LeftOut::unreadable(2)
            })
        );
        assert_eq!(f.done(), Some(ticket));
    }

    #[test]
    fn spans_evicted_before_they_were_taken_do_not_hold_a_flush() {
        let mut f = Flushes::default();
        let ticket = f.request(5);
        batch(&mut f, 1, 2);
        // The other 3 were evicted by newer spans, or abandoned: the queue is empty.
        assert!(f.wants_batch());
        f.queue_empty();
        assert!(!f.wants_batch());
        assert_eq!(f.done(), None);
        f.settle(1);
        assert_eq!(f.done(), Some(ticket));
    }

    #[test]
    fn handing_out_nothing_and_settling_twice_are_refused() {
        let mut f = Flushes::default();
        assert!(!f.hand_out(1, LeftOut::unreadable(0)));
        batch(&mut f, 1, 3);
        assert_eq!(f.settle(2), None);
        assert!(f.settle(1).is_some());
        assert_eq!(f.settle(1), None);
    }

    #[test]
    fn left_out_never_exceeds_what_was_handed_over() {
        let mut f = Flushes::default();
        f.take(2);
        f.hand_out(1, LeftOut::unreadable(9));
        assert_eq!(
            f.settle(1),
            Some(Handed {
                spans: 2,
                left_out: LeftOut::unreadable(2)
            })
        );
    }

    #[test]
    fn a_key_reused_after_an_abandoned_batch_settles_the_newer_batch() {
        let mut f = Flushes::default();
        batch(&mut f, 5, 1); // never settled
        batch(&mut f, 5, 3);
        assert_eq!(f.settle(5).map(|h| h.spans), Some(3));
    }
}
