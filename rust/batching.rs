//! When the worker takes spans off the queue: the batching decision, with no queue, lock or
//! Python in it.
//!
//! A batch goes out when it is full; when its window has passed (the earlier of the schedule
//! delay and the linger, counted from when the worker first saw its oldest span); or at once
//! while a flush or shutdown drains the lane. While a batch fills, the worker may take it a
//! chunk at a time (read-ahead), so that spans leave the queue young.

use std::time::{Duration, Instant};

/// Longest delay or timeout kept as given; beyond it `Instant` arithmetic could overflow.
const LONGEST_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// A duration given in milliseconds: NaN and negatives are zero, anything over a year a year.
pub fn millis(value: f64) -> Duration {
    if value.is_nan() || value <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(value / 1000.0).map_or(LONGEST_WAIT, |d| d.min(LONGEST_WAIT))
    }
}

/// What the worker does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Take up to `count` spans; `ends_batch` when the batch is complete with them.
    Take {
        count: usize,
        ends_batch: bool,
    },
    /// Wait until this deadline; `None`, until a span arrives.
    Wait(Option<Instant>),
    Stop,
}

/// The lane as the worker sees it when it decides.
#[derive(Clone, Copy, Debug, Default)]
pub struct Seen {
    /// Spans in the queue.
    pub queued: usize,
    /// Spans already taken into the batch being filled (read ahead).
    pub held: usize,
    /// A flush waits for spans queued or held.
    pub flushing: bool,
    pub shutdown: bool,
}

/// A lane's batching settings.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub batch_size: usize,
    pub delay: Duration,
    /// The latency cap of a partial batch (`linger_millis`).
    pub linger: Option<Duration>,
    /// Queued spans from which handing the GIL to a waiting export thread is urgent.
    urgent_at: usize,
}

impl Schedule {
    /// `0 < batch_size <= max_queue_size`.
    pub fn new(
        max_queue_size: usize,
        batch_size: usize,
        delay: Duration,
        linger: Option<Duration>,
    ) -> Self {
        Self {
            batch_size,
            delay,
            linger,
            urgent_at: batch_size.min(max_queue_size / 4).max(1),
        }
    }

    /// How long the oldest span of a batch waits for it to fill: the earlier deadline wins.
    pub fn window(&self) -> Duration {
        self.linger
            .map_or(self.delay, |linger| linger.min(self.delay))
    }

    /// The read-ahead chunk: `read_ahead` spans, at least one and at most a batch.
    pub fn chunk(&self, read_ahead: usize) -> usize {
        read_ahead.clamp(1, self.batch_size)
    }

    /// Whether `queued` spans make it urgent to hand the GIL to a waiting export thread, not
    /// after the handoff's patience: a full batch waits, or the queue is a quarter full.
    pub fn urgent(&self, queued: usize) -> bool {
        queued >= self.urgent_at
    }

    /// Whether `queued` spans make it urgent to yield to a worker woken for them that has not
    /// asked for the GIL yet (see `handoff.rs`): twice `urgent`, as one that has a CPU asks sooner.
    pub fn overdue(&self, queued: usize) -> bool {
        queued >= self.urgent_at.saturating_mul(2)
    }

    /// The worker's next step, reading ahead once `chunk` spans are queued. `window` holds
    /// when the worker first saw the oldest span of the batch it fills: it is set here when
    /// that batch starts, and cleared when the lane is empty.
    pub fn next_step(
        &self,
        seen: Seen,
        chunk: usize,
        window: &mut Option<Instant>,
        now: Instant,
    ) -> Step {
        let Seen {
            queued,
            held,
            flushing,
            shutdown,
        } = seen;
        let room = self.batch_size - held;
        if queued >= room || ((shutdown || flushing) && queued + held > 0) {
            return Step::Take {
                count: queued.min(room),
                ends_batch: true,
            };
        }
        if queued + held == 0 {
            *window = None;
            return if shutdown {
                Step::Stop
            } else {
                Step::Wait(None)
            };
        }
        let due = *window.get_or_insert(now) + self.window();
        if now >= due {
            Step::Take {
                count: queued,
                ends_batch: true,
            }
        } else if queued >= chunk {
            Step::Take {
                count: chunk,
                ends_batch: false,
            }
        } else {
            Step::Wait(Some(due))
        }
    }

    /// Whether `queued` spans are worth waking a worker that holds `held` and reads ahead
    /// `chunk` at a time: enough for its next take, or any span at all when it waits for one
    /// (`timed` false).
    pub fn enough(&self, queued: usize, held: usize, chunk: usize, timed: bool) -> bool {
        queued >= self.next_take(held, chunk) || (!timed && queued > 0)
    }

    /// Spans the worker's next take needs: a chunk, or what is left of its batch if less.
    pub fn next_take(&self, held: usize, chunk: usize) -> usize {
        chunk.min(self.batch_size - held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn schedule(linger: Option<Duration>) -> Schedule {
        Schedule::new(2048, 512, 5 * SECOND, linger)
    }

    fn seen(queued: usize, held: usize) -> Seen {
        Seen {
            queued,
            held,
            ..Seen::default()
        }
    }

    fn take(count: usize, ends_batch: bool) -> Step {
        Step::Take { count, ends_batch }
    }

    #[test]
    fn millis_are_clamped_to_zero_and_a_year() {
        assert_eq!(millis(1500.0), Duration::from_millis(1500));
        for nothing in [0.0, -1.0, f64::NAN, f64::NEG_INFINITY] {
            assert_eq!(millis(nothing), Duration::ZERO);
        }
        for huge in [1e300, f64::INFINITY] {
            assert_eq!(millis(huge), LONGEST_WAIT);
        }
    }

    #[test]
    fn a_full_batch_is_taken_at_once_and_no_more() {
        let mut window = None;
        let now = Instant::now();
        let step = schedule(None).next_step(seen(600, 0), 512, &mut window, now);
        assert_eq!(step, take(512, true));
        // With spans read ahead, only the batch's remaining room.
        let step = schedule(None).next_step(seen(600, 500), 512, &mut window, now);
        assert_eq!(step, take(12, true));
    }

    #[test]
    fn a_partial_batch_waits_for_its_window_from_the_first_look() {
        let s = schedule(None);
        let mut window = None;
        let start = Instant::now();
        let step = s.next_step(seen(3, 0), 512, &mut window, start);
        assert_eq!(step, Step::Wait(Some(start + 5 * SECOND)));
        assert_eq!(window, Some(start));
        // A later look keeps the window where it began.
        let step = s.next_step(seen(4, 0), 512, &mut window, start + SECOND);
        assert_eq!(step, Step::Wait(Some(start + 5 * SECOND)));
        let step = s.next_step(seen(4, 0), 512, &mut window, start + 5 * SECOND);
        assert_eq!(step, take(4, true));
    }

    #[test]
    fn the_earlier_of_linger_and_delay_wins() {
        let start = Instant::now();
        for (linger, wait) in [
            (Some(SECOND), SECOND),
            (Some(9 * SECOND), 5 * SECOND),
            (None, 5 * SECOND),
        ] {
            let mut window = None;
            let step = schedule(linger).next_step(seen(1, 0), 512, &mut window, start);
            assert_eq!(step, Step::Wait(Some(start + wait)), "linger {linger:?}");
        }
    }

    #[test]
    fn a_flush_or_shutdown_drains_what_is_queued_and_held() {
        let mut window = None;
        let now = Instant::now();
        for (flushing, shutdown) in [(true, false), (false, true)] {
            let draining = Seen {
                flushing,
                shutdown,
                ..seen(3, 2)
            };
            let step = schedule(None).next_step(draining, 512, &mut window, now);
            assert_eq!(step, take(3, true));
            let held_only = Seen {
                queued: 0,
                ..draining
            };
            let step = schedule(None).next_step(held_only, 512, &mut window, now);
            assert_eq!(step, take(0, true), "held spans end their batch");
        }
    }

    #[test]
    fn an_empty_lane_waits_for_a_span_or_stops_at_shutdown() {
        let now = Instant::now();
        let mut window = Some(now);
        let step = schedule(None).next_step(seen(0, 0), 512, &mut window, now);
        assert_eq!((step, window), (Step::Wait(None), None));
        let stopping = Seen {
            shutdown: true,
            ..seen(0, 0)
        };
        let step = schedule(None).next_step(stopping, 512, &mut window, now);
        assert_eq!(step, Step::Stop);
    }

    #[test]
    fn a_filling_batch_is_read_ahead_a_chunk_at_a_time() {
        let s = schedule(None);
        let mut window = None;
        let now = Instant::now();
        assert_eq!(
            s.next_step(seen(40, 64), 32, &mut window, now),
            take(32, false)
        );
        assert!(matches!(
            s.next_step(seen(31, 64), 32, &mut window, now),
            Step::Wait(Some(_))
        ));
        assert_eq!(s.chunk(0), 1);
        assert_eq!(s.chunk(10_000), 512);
    }

    #[test]
    fn a_waiting_worker_is_worth_waking_for_its_next_take() {
        let s = schedule(None);
        assert!(!s.enough(31, 0, 32, true));
        assert!(s.enough(32, 0, 32, true));
        assert!(s.enough(12, 500, 32, true), "the batch's last room");
        assert_eq!(s.next_take(500, 32), 12, "what wakes the worker for it");
        assert_eq!(s.next_take(0, 32), 32);
        assert!(s.enough(1, 0, 512, false), "an idle worker wants any span");
        assert!(!s.enough(0, 0, 512, false));
    }

    #[test]
    fn handing_the_gil_over_is_urgent_from_a_batch_or_a_quarter_of_the_queue() {
        assert!(!schedule(None).urgent(511));
        assert!(schedule(None).urgent(512));
        let small = Schedule::new(100, 50, SECOND, None);
        assert!(!small.urgent(24) && small.urgent(25));
        assert!(Schedule::new(2, 1, SECOND, None).urgent(1));
    }

    #[test]
    fn a_worker_yet_to_ask_for_the_gil_is_overdue_from_twice_urgent() {
        assert!(!schedule(None).overdue(1023));
        assert!(schedule(None).overdue(1024));
        assert!(Schedule::new(2, 1, SECOND, None).overdue(2));
    }
}
