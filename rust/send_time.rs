//! How long this lane's sends take, learned from its own: what reading on (`read_on.rs`) weighs.
//!
//! The worker hands batches out, the exporter sends them, and the worker comes back for more:
//! the time it was away, over the bytes it handed out, is what a byte took to this backend,
//! plus the call's fixed costs (a round trip, the worker's Python around the send, its wait for
//! the GIL). A backend over the internet at 10-30 MB/s takes 100-300 ms for a 3.2 MB request,
//! not the 26 ms of a gigabit: a burst of large records that would overflow the queue meanwhile
//! is read on only if the lane knows.
//!
//! - Before its first send of `MEASURED_BYTES` or more, a lane expects requests that large to
//!   go out at `UNMEASURED_BYTES_PER_SECOND`, not at a gigabit, which is no bound there: a
//!   loopback receiver on a 2-core machine took 5.1 MB in 50-190 ms while the application's
//!   loop ran beside it (27-100 MB/s; 31 ms once the loop was over), and a backend over the
//!   internet takes 10-30 MB/s. Sent alone, expected back in a gigabit's 41 ms, a lane's first
//!   batch of chat events let its loop of 5,000 overflow the queue (411 to 2,440 lost, issue 17).
//!   A smaller request (512 spans: 150 KB) is its fixed costs mostly: a gigabit's time.
//! - Never faster than a gigabit: no lane reads on less than with that figure alone.
//! - A slower send raises the estimate at once (the next burst may be on its way), if it was
//!   large enough that the fixed costs are a small part of it (`MEASURED_BYTES`), and to no
//!   slower than `SLOWEST_BYTES_PER_SECOND`.
//! - A faster send, of any size, lowers it halfway: a backend fast again stops a lane reading
//!   on within a few sends, and one quick answer from a slow backend does not undo what it taught.
//! - A send that failed or was retried teaches nothing: a failure may come back at once
//!   (refused), and a retry's backoff is not the backend's time. Retries an exporter makes
//!   within its own call are not seen: one such send is forgotten as any slow one is.

use crate::read_on::Mark;
use std::time::{Duration, Instant};

/// The fastest a byte is taken to go out: a gigabit link.
const FASTEST_BYTES_PER_SECOND: f64 = 125e6;

/// How fast a request of `MEASURED_BYTES` or more is taken to go out before a lane has sent one:
/// a fifth of a gigabit link (see the module's comment).
const UNMEASURED_BYTES_PER_SECOND: f64 = 25e6;

/// The slowest a byte is taken to go out (an 8 Mbit/s uplink): bounds what a stalled send (a
/// suspended machine, an exporter's own backoff) teaches, and so the sends it takes to forget it.
const SLOWEST_BYTES_PER_SECOND: f64 = 1e6;

/// Sends from this size on tell how slow the backend is (8 ms at a gigabit); in a smaller one
/// the fixed costs would pass for a slow backend: a call of one 90 KB batch of spans to a
/// loopback receiver, four threads ending spans, was back in 6-11 ms (measured). A smaller
/// send only lowers the estimate.
const MEASURED_BYTES: usize = 1_000_000;

/// How long sending a number of bytes takes, as this lane's sends have shown.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SendTime {
    seconds_per_byte: f64,
    /// Whether a send of `MEASURED_BYTES` or more has taught it.
    measured: bool,
}

impl SendTime {
    /// At a gigabit, the fastest, as a lane's sends have shown it.
    pub const GIGABIT: Self = Self {
        seconds_per_byte: 1.0 / FASTEST_BYTES_PER_SECOND,
        measured: true,
    };

    /// The estimate before any send of `MEASURED_BYTES` or more.
    pub const UNMEASURED: Self = Self {
        measured: false,
        ..Self::GIGABIT
    };

    /// Seconds to send `bytes`.
    #[allow(clippy::cast_precision_loss)] // sizes far below 2^52
    pub fn of(self, bytes: usize) -> f64 {
        if !self.measured && bytes >= MEASURED_BYTES {
            return bytes as f64 / UNMEASURED_BYTES_PER_SECOND;
        }
        bytes as f64 * self.seconds_per_byte
    }

    /// Learns from a send of `bytes` that kept the worker `away`.
    #[allow(clippy::cast_precision_loss)] // sizes far below 2^52
    fn learn(&mut self, bytes: usize, away: Duration) {
        if bytes == 0 {
            return;
        }
        let measured = (away.as_secs_f64() / bytes as f64).clamp(
            Self::GIGABIT.seconds_per_byte,
            1.0 / SLOWEST_BYTES_PER_SECOND,
        );
        if measured < self.seconds_per_byte {
            self.seconds_per_byte = (self.seconds_per_byte + measured) / 2.0;
        } else if bytes >= MEASURED_BYTES {
            self.seconds_per_byte = measured;
        }
        self.measured |= bytes >= MEASURED_BYTES;
    }
}

/// The batches a lane's worker last handed out, and what its sends have shown.
#[derive(Debug)]
pub struct Sends {
    /// When they were handed out (at first, when the lane was made).
    handed_out: Mark,
    /// Their bytes, until the worker is back from sending them (0: nothing to learn).
    bytes: usize,
    /// The lane's failed and retried exports when they were handed out.
    setbacks: u64,
    time: SendTime,
}

impl Sends {
    /// A lane made at `made`, that has sent nothing.
    pub fn new(made: Mark) -> Self {
        Self {
            handed_out: made,
            bytes: 0,
            setbacks: 0,
            time: SendTime::UNMEASURED,
        }
    }

    /// Batches of `bytes` in all handed out at `mark`; the lane's failed and retried exports
    /// number `setbacks` by then.
    pub fn hand_out(&mut self, mark: Mark, bytes: usize, setbacks: u64) {
        self.handed_out = mark;
        self.bytes = bytes;
        self.setbacks = setbacks;
    }

    /// The worker is back for batches at `now`, `setbacks` failed and retried exports by then:
    /// it learns from the sends of the last hand-out, if they all went through on their first
    /// attempt. Returns that hand-out's mark and how long a send takes.
    ///
    /// A worker with several export threads is back as soon as one is free, which says little
    /// of a send; but it takes one batch at a time, so it never reads on.
    pub fn back(&mut self, now: Instant, setbacks: u64) -> (Mark, SendTime) {
        if setbacks == self.setbacks {
            let away = now.saturating_duration_since(self.handed_out.at);
            self.time.learn(self.bytes, away);
        }
        self.bytes = 0; // learned once: a later call may hand out nothing
        (self.handed_out, self.time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Seconds the lane now takes to send `bytes`, after a send of them that took `away`.
    fn after_a_send(sends: &mut Sends, bytes: usize, away: Duration) -> f64 {
        let at = Instant::now();
        sends.hand_out(Mark { at, enqueued: 0 }, bytes, 0);
        sends.back(at + away, 0).1.of(bytes)
    }

    fn new_lane() -> Sends {
        Sends::new(Mark {
            at: Instant::now(),
            enqueued: 0,
        })
    }

    fn close(seconds: f64, expected: f64) -> bool {
        (seconds - expected).abs() < expected * 1e-6
    }

    #[test]
    fn before_any_large_send_a_large_request_takes_a_fifth_of_a_gigabit_links_time() {
        let mut sends = new_lane();
        let (_, time) = sends.back(Instant::now() + 10_000 * MS, 0);
        assert_eq!(time, SendTime::UNMEASURED);
        assert!(close(time.of(3_200_000), 0.128));
        // 512 spans: a gigabit's time.
        assert!(close(time.of(150_000), 0.0012));
        // Small sends, however fast, measure nothing.
        let fast = after_a_send(&mut sends, 150_000, MS);
        assert!(close(fast, 0.0012));
        assert!(close(sends.back(Instant::now(), 0).1.of(3_200_000), 0.128));
    }

    #[test]
    fn a_large_send_at_a_gigabits_pace_is_learned_at_once() {
        let mut sends = new_lane();
        assert!(close(after_a_send(&mut sends, 3_200_000, 25 * MS), 0.0256));
    }

    #[test]
    fn a_slow_send_raises_the_estimate_at_once() {
        // 3.2 MB in 320 ms: a backend at 10 MB/s.
        let mut sends = new_lane();
        assert!(close(after_a_send(&mut sends, 3_200_000, 320 * MS), 0.32));
    }

    #[test]
    fn a_small_slow_send_says_nothing_of_the_backend() {
        // 100 KB in 20 ms: a round trip and a wait for the GIL, most of it.
        let mut sends = new_lane();
        assert!(close(after_a_send(&mut sends, 100_000, 20 * MS), 0.0008));
    }

    #[test]
    fn nothing_sends_faster_than_a_gigabit() {
        let mut sends = new_lane();
        assert!(close(after_a_send(&mut sends, 3_200_000, MS), 0.0256));
    }

    #[test]
    fn a_stalled_send_teaches_no_slower_than_the_slowest_backend() {
        // 3.2 MB in a minute: a suspended machine, or an exporter's own backoff.
        let mut sends = new_lane();
        assert!(close(after_a_send(&mut sends, 3_200_000, 60_000 * MS), 3.2));
    }

    #[test]
    fn a_failed_or_retried_send_teaches_nothing() {
        let mut sends = new_lane();
        let at = Instant::now();
        sends.hand_out(Mark { at, enqueued: 0 }, 3_200_000, 7);
        // Refused at once, or retried after a backoff: one more setback either way.
        let (_, time) = sends.back(at + 2000 * MS, 8);
        assert_eq!(time, SendTime::UNMEASURED);
    }

    #[test]
    fn a_backend_fast_again_is_learned_within_a_few_sends() {
        let mut sends = new_lane();
        after_a_send(&mut sends, 3_200_000, 320 * MS);
        // One answer at a gigabit's pace halves the excess: the backend may still be slow.
        let once = after_a_send(&mut sends, 3_200_000, 25 * MS);
        assert!(close(once, (0.32 + 0.0256) / 2.0));
        // Small sends count too: a lane of spans comes back to a gigabit's time.
        for _ in 0..10 {
            after_a_send(&mut sends, 150_000, MS);
        }
        assert!(after_a_send(&mut sends, 3_200_000, 25 * MS) < 0.0256 * 1.01);
    }

    #[test]
    fn each_hand_out_is_learned_from_once() {
        let mut sends = new_lane();
        let at = Instant::now();
        sends.hand_out(Mark { at, enqueued: 5 }, 3_200_000, 0);
        let (handed_out, _) = sends.back(at + 25 * MS, 0);
        assert_eq!(handed_out.enqueued, 5);
        // A call that handed nothing out, back a second later: not a send of 3.2 MB that long.
        let (_, time) = sends.back(at + 1000 * MS, 0);
        assert!(close(time.of(3_200_000), 0.0256));
    }
}
