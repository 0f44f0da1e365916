//! Reading on: once a batch is read, whether the worker sends it now or first reads the next.
//!
//! One worker sends the batches it took and only then takes more: while a request goes out,
//! the queue only fills. A batch of large items takes long to send (512 chat events of
//! 2-20 KB are 5 MB: 15-70 ms to a loopback receiver, measured), while an application in a
//! tight loop fills a default queue's 2,048 slots in about 40 ms: every record after that was
//! dropped while the worker waited on the network. So, for an exporter that takes several
//! batches per call, the worker reads on into the next batch while sending what it holds
//! would, at the rate items have been arriving, overflow the queue before the send returns.
//! Reading empties the queue into requests at a few µs per item; they then go out together.
//!
//! It reads on only while items keep coming (each chunk within `CHUNK_WAIT`), never past the
//! call's batches, and never past the window (schedule delay) of the batch it holds, so no
//! item waits longer to go out than its schedule lets it. Small items (spans: about 0.3 KB)
//! make requests quick to send: the worker sends at once, as before.

use std::time::{Duration, Instant};

/// The send rate assumed when telling how long a request takes: a gigabit link.
const SEND_BYTES_PER_SECOND: f64 = 125e6;

/// Longest the worker reading on waits for the next chunk: a pause that long ends the burst.
pub const CHUNK_WAIT: Duration = Duration::from_millis(20);

/// How fast items arrived during one call for batches.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// When the worker first saw the items of its first batch (the call's start if they were
    /// queued already: those arrived before, while it was sending).
    since: Instant,
    /// Items queued when the call began.
    queued_before: usize,
}

impl Pace {
    pub fn new(since: Instant, queued_before: usize) -> Self {
        Self {
            since,
            queued_before,
        }
    }

    /// Whether to read on, holding `read` items in requests of `bytes` in all, `queued` more
    /// waiting and `room` free slots: sending now would take long enough for items arriving as
    /// they did during this call to fill half the room.
    #[allow(clippy::cast_precision_loss)] // counts and sizes far below 2^52
    pub fn reads_on(
        &self,
        read: usize,
        queued: usize,
        bytes: usize,
        room: usize,
        now: Instant,
    ) -> bool {
        let arrived = (read + queued).saturating_sub(self.queued_before) as f64;
        let elapsed = now.saturating_duration_since(self.since).as_secs_f64();
        let sending = bytes as f64 / SEND_BYTES_PER_SECOND;
        // Half the room: the send rate is a guess, and a send slower than it loses items.
        2.0 * arrived * sending / elapsed.max(1e-3) > room as f64
    }

    /// When the worker reading on stops waiting for its next chunk: `CHUNK_WAIT` from `now`, and
    /// never past `window` from the first take (the batch it holds must not wait longer).
    pub fn chunk_deadline(&self, now: Instant, window: Duration) -> Instant {
        (now + CHUNK_WAIT).min(self.since + window)
    }
}

/// One call's reading on: its pace from its first take, and what it read.
#[derive(Default)]
pub struct ReadOn {
    /// The pace from the call's first take.
    pub pace: Option<Pace>,
    /// Whether the worker reads on into the batch it holds.
    pub reading: bool,
    /// Items stopped coming while it read on: it reads on no more in this call.
    pub stopped: bool,
    /// Items read in this call.
    pub read: usize,
    /// Bytes of the batches read in this call.
    pub bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn large_items_arriving_fast_read_on() {
        let start = Instant::now();
        let pace = Pace::new(start, 0);
        // 512 GenAI events (5 MB) read in 8 ms, as a tight loop makes them: 40 ms to send,
        // in which 2,560 more arrive, more than the queue's 2,048 slots.
        assert!(pace.reads_on(512, 0, 5_000_000, 2048, start + 8 * MS));
        // The same items at a tenth of the pace: the queue takes what arrives meanwhile.
        assert!(!pace.reads_on(512, 0, 5_000_000, 2048, start + 80 * MS));
    }

    #[test]
    fn small_items_go_out_at_once() {
        let start = Instant::now();
        // 512 spans (150 KB) in 2 ms: about 1 ms to send.
        assert!(!Pace::new(start, 0).reads_on(512, 0, 150_000, 2048, start + 2 * MS));
        // Four batches of them found queued, 200 more arrived while the worker read them.
        let pace = Pace::new(start, 2048);
        assert!(!pace.reads_on(2048, 200, 600_000, 1848, start + 4 * MS));
    }

    #[test]
    fn items_queued_before_the_call_are_not_counted_as_arriving() {
        let start = Instant::now();
        let pace = Pace::new(start, 2048);
        // Four batches of large items found queued; none arrived while they were read.
        assert!(!pace.reads_on(2048, 0, 20_000_000, 2048, start + 10 * MS));
        // 1,000 arrived in those 10 ms: 160 ms to send 20 MB, 16,000 would arrive meanwhile.
        assert!(pace.reads_on(2048, 1000, 20_000_000, 1048, start + 10 * MS));
    }

    #[test]
    fn the_wait_for_a_chunk_ends_at_the_window() {
        let start = Instant::now();
        let pace = Pace::new(start, 0);
        assert_eq!(
            pace.chunk_deadline(start, Duration::from_secs(1)),
            start + CHUNK_WAIT
        );
        assert_eq!(
            pace.chunk_deadline(start + 998 * MS, Duration::from_secs(1)),
            start + 1000 * MS
        );
    }
}
