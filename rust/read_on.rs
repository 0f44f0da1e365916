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
//! How long a send takes is what this lane's sends have taken, never less than at a gigabit
//! (`send_time.rs`): to a backend over the internet a request takes ten times that. Before its
//! first large send, a lane expects one at a fifth of a gigabit.
//!
//! The pace counts from several moments, and the fastest counts: a pause in the arrivals (the
//! application waiting on a model's answer, or collecting garbage with the GIL held) lowers the
//! pace since any moment before it, though the burst goes on after it at its own pace (a 44 ms
//! collection in a lane's first batch of chat events: 544 records in 55 ms, then 4,400 in the
//! 95 ms its send took, 2,440 lost). So it counts from the latest moments the worker saw too: its
//! takes, and the pushes that woke it. Those pushes, not the worker's wake: a woken worker may
//! wait for a CPU, then for the GIL, while a busy application goes on (it takes the next chunks
//! one after another then, and sees none come between them).
//!
//! It reads on only while items keep coming (each chunk within `CHUNK_WAIT`), never past the
//! call's batches, and never past the window (schedule delay) of the batch it holds, so no
//! item waits longer to go out than its schedule lets it. Small items (spans: about 0.3 KB)
//! make requests quick to send: the worker sends at once, as before.

use crate::send_time::SendTime;
use std::time::{Duration, Instant};

/// Longest the worker reading on waits for the next chunk: a pause that long ends the burst.
pub const CHUNK_WAIT: Duration = Duration::from_millis(20);

/// The latest moments the pace also counts from: a take and the push that woke the worker per
/// chunk, for a few chunks, so that one of them lies after a pause.
const RECENT_LOOKS: usize = 8;

/// A moment and the items enqueued by then (dropped ones too): arrivals are counted from one.
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    pub at: Instant,
    pub enqueued: u64,
}

impl Mark {
    /// Items a second enqueued since this mark, `enqueued` of them by `now`.
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    fn rate(&self, enqueued: u64, now: Instant) -> f64 {
        let arrived = enqueued.saturating_sub(self.enqueued) as f64;
        arrived
            / now
                .saturating_duration_since(self.at)
                .as_secs_f64()
                .max(1e-3)
    }
}

/// How fast items arrive, for one call for batches.
///
/// Arrivals are counted over two spans of time, and the faster pace is taken. The call's own
/// time misses a loop that never lets go of the GIL: the worker's reading holds it up, so
/// nothing arrives while it reads (600 large records in such a loop lost 280 when only these
/// counted). Since `from`, it also sees the items that arrived while the worker was not
/// holding the GIL: waiting for them, or sending the batches before.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    /// The end of the worker's wait for an empty queue to fill (the first arrival woke it),
    /// else when it last handed batches out: what came since, came while they were sent.
    from: Mark,
    /// The call's first take: what comes after, comes while the worker reads.
    first_take: Mark,
    /// When the worker first saw the batch it holds: reading on ends at that batch's window.
    first_seen: Instant,
    /// How long this lane's sends take.
    send: SendTime,
    /// The latest moments seen in the call since its first take (`looked`), the next to replace
    /// at `looks % RECENT_LOOKS`.
    recent: [Option<Mark>; RECENT_LOOKS],
    looks: usize,
}

impl Pace {
    /// The pace of a call that began at `called` and first took items at `first_take`.
    /// `woken`: the end of its wait for an empty queue to fill, if it waited so; `handed_out`:
    /// when batches were last handed out (at first, when the lane was made); `window`: when the
    /// worker first looked at the partial batch it then filled, if it did; `send`: how long the
    /// lane's sends take.
    pub fn new(
        woken: Option<Mark>,
        handed_out: Mark,
        window: Option<Instant>,
        called: Instant,
        first_take: Mark,
        send: SendTime,
    ) -> Self {
        // Not the call's start after a wait: that may be long past, the window with it.
        let first_seen = window
            .or(woken.map(|mark| mark.at))
            .map_or(called, |seen| seen.max(called));
        Self {
            from: woken.unwrap_or(handed_out),
            first_take,
            first_seen,
            send,
            recent: [None; RECENT_LOOKS],
            looks: 0,
        }
    }

    /// The worker took items at `mark`, or the push at `mark` woke it.
    pub fn looked(&mut self, mark: Mark) {
        self.recent[self.looks % RECENT_LOOKS] = Some(mark);
        self.looks += 1;
    }

    /// Whether to read on, holding requests of `bytes` in all, `enqueued` items having come so
    /// far and `room` slots free: sending now would take long enough for items arriving at
    /// this pace to fill half the room.
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    pub fn reads_on(&self, enqueued: u64, bytes: usize, room: usize, now: Instant) -> bool {
        let rate = self
            .recent
            .iter()
            .flatten()
            .chain([&self.from, &self.first_take])
            .map(|mark| mark.rate(enqueued, now))
            .fold(0.0, f64::max);
        let sending = self.send.of(bytes);
        // Half the room: the send time is an estimate, and a send slower than it loses items.
        2.0 * rate * sending > room as f64
    }

    /// When the worker reading on stops waiting for its next chunk: `CHUNK_WAIT` from `now`, and
    /// never past `window` from its first look at the batch it holds (which must not wait longer).
    pub fn chunk_deadline(&self, now: Instant, window: Duration) -> Instant {
        (now + CHUNK_WAIT).min(self.first_seen + window)
    }
}

/// One call's reading on: its pace, and what it read.
#[derive(Default)]
pub struct ReadOn {
    /// The end of the call's wait for an empty queue to fill, if it waited so (the first arrival
    /// woke it), with the items enqueued before that wait.
    pub woken: Option<Mark>,
    /// Set at the call's first take.
    pub pace: Option<Pace>,
    /// Whether the worker reads on into the batch it holds.
    pub reading: bool,
    /// Items stopped coming while it read on: it reads on no more in this call.
    pub stopped: bool,
    /// Bytes of the batches read in this call.
    pub bytes: usize,
}

impl ReadOn {
    /// The worker's wait ended: `woken`, its end and the items enqueued before it; `empty`, a
    /// wait for an empty queue to fill; `woken_by`, the push that woke it, if one did.
    pub fn woke(&mut self, woken: Mark, empty: bool, woken_by: Option<Mark>) {
        if empty {
            self.woken = Some(woken);
        }
        if let Some(push) = woken_by {
            self.looked(push);
        }
    }

    /// See `Pace::looked`: counted once the call's pace is set.
    pub fn looked(&mut self, mark: Mark) {
        if let Some(pace) = &mut self.pace {
            pace.looked(mark);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send_time::Sends;

    const MS: Duration = Duration::from_millis(1);
    const GIGABIT: SendTime = SendTime::GIGABIT;

    fn mark(at: Instant, enqueued: u64) -> Mark {
        Mark { at, enqueued }
    }

    /// A call that found its items queued at `start`, the last hand-out `before` it.
    fn found_queued(start: Instant, before: Mark, first_take: Mark) -> Pace {
        Pace::new(None, before, None, start, first_take, GIGABIT)
    }

    /// What a lane learned from a send of `bytes` that took `away`.
    fn learned(bytes: usize, away: Duration) -> SendTime {
        let at = Instant::now();
        let mut sends = Sends::new(mark(at, 0));
        sends.hand_out(mark(at, 0), bytes, 0);
        sends.back(at + away, 0).1
    }

    #[test]
    fn large_items_arriving_fast_read_on() {
        let start = Instant::now();
        let woken = Some(mark(start, 0));
        let pace = Pace::new(woken, mark(start, 0), None, start, mark(start, 0), GIGABIT);
        // 512 GenAI events (5 MB) read in 8 ms, as a tight loop makes them: 40 ms to send,
        // in which 2,560 more arrive, more than the queue's 2,048 slots.
        assert!(pace.reads_on(512, 5_000_000, 2048, start + 8 * MS));
        // The same items at a tenth of the pace: the queue takes what arrives meanwhile.
        assert!(!pace.reads_on(512, 5_000_000, 2048, start + 80 * MS));
    }

    #[test]
    fn small_items_go_out_at_once() {
        let start = Instant::now();
        // As a lane sees its backend before any send, and after sends of 1.2 MB that took 15 ms
        // (twice a gigabit's time: the worker waited for the GIL after each).
        for send in [SendTime::UNMEASURED, learned(1_200_000, 15 * MS)] {
            // 512 spans (150 KB) in 2 ms: 1-2 ms to send.
            let woken = Some(mark(start, 0));
            let pace = Pace::new(woken, mark(start, 0), None, start, mark(start, 0), send);
            assert!(!pace.reads_on(512, 150_000, 2048, start + 2 * MS));
            // Four batches of them came in the 40 ms the last send took, 200 more while they
            // were read: 50,000 spans a second, 5-8 ms to send.
            let called = start + 40 * MS;
            let pace = Pace::new(None, mark(start, 0), None, called, mark(called, 2048), send);
            assert!(!pace.reads_on(2248, 600_000, 1848, start + 44 * MS));
        }
    }

    #[test]
    fn a_lanes_first_batch_of_chat_events_reads_on_at_a_slow_machines_pace() {
        let start = Instant::now();
        // 596 records in 47 ms: 12,600 a second, the loop slowed by a busy machine. At a
        // gigabit, 41 ms to send 5.1 MB: 1,040 would come. Alone, that send took 50-190 ms.
        let woken = Some(mark(start, 0));
        let pace = |send| Pace::new(woken, mark(start, 0), None, start, mark(start, 129), send);
        let now = start + 47 * MS;
        assert!(!pace(GIGABIT).reads_on(596, 5_130_952, 1964, now));
        // Before its first large send a lane expects 205 ms: 5,200 would come.
        assert!(pace(SendTime::UNMEASURED).reads_on(596, 5_130_952, 1964, now));
    }

    #[test]
    fn a_slow_backend_is_read_on_at_a_pace_a_gigabit_would_send_through() {
        let start = Instant::now();
        // A burst of 300 KB records, 1,600 a second: a batch of 4 (1.2 MB) read in 2.5 ms.
        let woken = Some(mark(start, 0));
        let at_a_gigabit = Pace::new(woken, mark(start, 0), None, start, mark(start, 0), GIGABIT);
        // 10 ms to send at a gigabit: 16 more arrive, the queue's 92 free slots take them.
        assert!(!at_a_gigabit.reads_on(4, 1_200_000, 92, start + 2500 * Duration::from_micros(1)));
        // The lane's last request of that size took 300 ms (4 MB/s): 480 would arrive.
        let send = learned(1_200_000, 300 * MS);
        let measured = Pace::new(woken, mark(start, 0), None, start, mark(start, 0), send);
        assert!(measured.reads_on(4, 1_200_000, 92, start + 2500 * Duration::from_micros(1)));
    }

    #[test]
    fn items_that_came_while_the_worker_sent_count() {
        let start = Instant::now();
        // Batches handed out at `start`; 40 ms later the call finds the 256-slot queue full
        // and 280 dropped. None arrived while it read a batch of 3.2 MB (its read held them up).
        let called = start + 40 * MS;
        let pace = found_queued(called, mark(start, 0), mark(called, 536));
        assert!(pace.reads_on(536, 3_200_000, 192, start + 45 * MS));
        // Counted from the call alone, nothing came: it would send at once.
        let pace = found_queued(called, mark(called, 536), mark(called, 536));
        assert!(!pace.reads_on(536, 3_200_000, 192, start + 45 * MS));
    }

    #[test]
    fn a_wait_for_an_empty_queue_counts_from_its_end() {
        let called = Instant::now();
        // Idle for 6 s, woken by the first of a burst: 128 large items by the first take 5 ms
        // later, none since. From the call's start the pace would be 21 items a second.
        let woken = mark(called + 6000 * MS, 0);
        let first_take = mark(woken.at + 5 * MS, 128);
        let pace = Pace::new(
            Some(woken),
            mark(called, 0),
            None,
            called,
            first_take,
            GIGABIT,
        );
        assert!(pace.reads_on(128, 3_200_000, 192, woken.at + 8 * MS));
        // Its window runs from there too, not from the call's start 6 s before: a chunk is
        // still awaited for `CHUNK_WAIT`.
        let now = woken.at + 8 * MS;
        assert_eq!(
            pace.chunk_deadline(now, Duration::from_secs(1)),
            now + CHUNK_WAIT
        );
    }

    #[test]
    fn a_pause_in_a_batch_counts_not_in_the_pace_after_it() {
        let start = Instant::now();
        // A lane's first batch of chat events, 32 taken at a time: 288 in 6 ms, a collection of
        // 44 ms, then a chunk every 1.3 ms; 48 more came while the last was read.
        let woken = Some(mark(start, 0));
        let mut pace = Pace::new(woken, mark(start, 0), None, start, mark(start, 32), GIGABIT);
        let (batch, room) = (5_100_000, 2016);
        pace.looked(mark(start + 6 * MS, 288));
        // Counted from before the pause only: 10,000 a second, 41 ms to send: 410 would come.
        assert!(!pace.reads_on(544, batch, room, start + 55 * MS));
        for (at, enqueued) in [(51000, 352), (52300, 416), (53600, 480), (54900, 544)] {
            pace.looked(mark(start + Duration::from_micros(at), enqueued));
        }
        // Since the take at 51 ms, 52,000 a second: 4,200 would come.
        assert!(pace.reads_on(560, batch, room, start + 55 * MS));
    }

    #[test]
    fn a_worker_woken_late_counts_from_the_push_that_woke_it() {
        let start = Instant::now();
        // Batches of 128 of 50 KB records, read 32 at a time: 40 came, the worker took 32, then
        // a pause of 300 ms; the 72nd record woke it, which ran 2.5 ms later, with 160 come.
        let woken = Some(mark(start, 0));
        let mut pace = Pace::new(woken, mark(start, 0), None, start, mark(start, 40), GIGABIT);
        let (room, now) = (224, start + 303 * MS);
        pace.looked(mark(start + 1 * MS, 40));
        assert!(!pace.reads_on(160, 6_400_000, room, now));
        pace.looked(mark(start + 300 * MS + 500 * Duration::from_micros(1), 72));
        pace.looked(mark(now, 160));
        // 35,000 a second since that push: 3,600 would come in the 51 ms a send takes.
        assert!(pace.reads_on(160, 6_400_000, room, now));
    }

    #[test]
    fn the_pace_of_a_burst_after_a_lull_is_its_own() {
        let start = Instant::now();
        // Handed out a second ago, 10 since; then 64 large items came in 2 ms during the call.
        let called = start + 1000 * MS;
        let pace = found_queued(called, mark(start, 0), mark(called, 10));
        assert!(pace.reads_on(74, 3_200_000, 192, start + 1002 * MS));
    }

    #[test]
    fn the_wait_for_a_chunk_ends_at_the_window_of_the_first_look() {
        let called = Instant::now();
        // The worker first looked at its partial batch 500 ms into the call.
        let seen = called + 500 * MS;
        let pace = Pace::new(
            None,
            mark(called, 0),
            Some(seen),
            called,
            mark(seen, 0),
            GIGABIT,
        );
        assert_eq!(
            pace.chunk_deadline(seen, Duration::from_secs(1)),
            seen + CHUNK_WAIT
        );
        assert_eq!(
            pace.chunk_deadline(seen + 998 * MS, Duration::from_secs(1)),
            seen + 1000 * MS
        );
        // A window left from before the call (the spans a batch left behind) counts from the call.
        let before = Pace::new(
            None,
            mark(called, 0),
            Some(called),
            called + 500 * MS,
            mark(seen, 0),
            GIGABIT,
        );
        assert_eq!(
            before.chunk_deadline(seen + 998 * MS, Duration::from_secs(1)),
            seen + 1000 * MS
        );
    }
}
