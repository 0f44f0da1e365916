//! A cut-off for an `HttpSender`'s requests, set while they are under way: at exit, a spilling exporter's
//! request that waits for an answer that never comes (a backend that took the connection and hangs) ends in
//! time for it and the queue behind it to be written to disk within the exit deadline (`_spilling.py`).
//!
//! A read waiting for the answer waits in slices of at most `LOOK_EVERY`, looking at the cut-off between
//! them: one set after the request began still ends it. A read that times out has taken nothing from the
//! socket, so the next slice goes on with the same wait. A write is given the time to the cut-off at most,
//! from its start: it cannot be sliced (what it wrote before timing out is sent). Past the cut-off, a
//! request fails before it writes anything. The connect is not cut: it precedes these, and a backend that
//! takes the connection is what this is for. The failure is a timeout, as if the request's own had passed.

use std::io::{self, ErrorKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::unversioned::transport::{
    time, Buffers, ConnectionDetails, Connector, NextTimeout, Transport,
};
use ureq::Error;

/// How often a read waiting for an answer looks at the cut-off: its precision.
const LOOK_EVERY: Duration = Duration::from_millis(100);
/// What `Cutoff::at` holds while no cut-off is set.
const UNSET: u64 = u64::MAX;

/// When an `HttpSender`'s requests end at the latest, once set; shared with its connections. An atomic, not a
/// lock: every waiting read looks at it, and a lock held at a fork would stay held in the child.
#[derive(Debug)]
pub struct Cutoff {
    since: Instant,
    /// Nanoseconds from `since` to the cut-off, or `UNSET`.
    at: AtomicU64,
}

impl Default for Cutoff {
    fn default() -> Self {
        Self {
            since: Instant::now(),
            at: AtomicU64::new(UNSET),
        }
    }
}

impl Cutoff {
    pub fn set(&self, at: Instant) {
        let nanos = at.saturating_duration_since(self.since).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(UNSET - 1).min(UNSET - 1); // centuries away: never, in practice
        self.at.store(nanos, Ordering::Relaxed);
    }

    /// The time left to the cut-off (zero once past); None while none is set.
    fn left(&self) -> Option<Duration> {
        let nanos = self.at.load(Ordering::Relaxed);
        (nanos != UNSET).then(|| {
            (self.since + Duration::from_nanos(nanos)).saturating_duration_since(Instant::now())
        })
    }
}

/// What a request fails with at the cut-off: a connection timeout, retried (and then spilled) as one.
fn cut_short() -> Error {
    Error::Io(io::Error::new(
        ErrorKind::TimedOut,
        "cut short: no answer by the cut-off set at exit (the exit deadline is near)",
    ))
}

/// Wraps each connection the chain opened in a `CutShort` reading the sender's `Cutoff`.
#[derive(Debug)]
pub struct EndsAtCutoff(pub Arc<Cutoff>);

impl<In: Transport> Connector<In> for EndsAtCutoff {
    type Out = CutShort<In>;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        Ok(chained.map(|inner| CutShort {
            inner,
            cutoff: Arc::clone(&self.0),
        }))
    }
}

/// A connection whose reads and writes end at its sender's cut-off.
#[derive(Debug)]
pub struct CutShort<T> {
    inner: T,
    cutoff: Arc<Cutoff>,
}

impl<T: Transport> Transport for CutShort<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        let timeout = match self.cutoff.left() {
            Some(Duration::ZERO) => return Err(cut_short()),
            Some(left) if left < *timeout.after => NextTimeout {
                after: time::Duration::Exact(left),
                ..timeout
            },
            _ => timeout,
        };
        self.inner.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        let timeout = timeout.for_read(); // applied here: the slices below are the reads' only timeout
        let ends = Instant::now().checked_add(*timeout.after); // None: it never times out
        loop {
            let left = ends.map_or(LOOK_EVERY, |ends| {
                ends.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return Err(Error::Timeout(timeout.reason));
            }
            let to_cutoff = self.cutoff.left();
            if to_cutoff == Some(Duration::ZERO) {
                return Err(cut_short());
            }
            let slice = NextTimeout {
                after: time::Duration::Exact(
                    left.min(LOOK_EVERY).min(to_cutoff.unwrap_or(LOOK_EVERY)),
                ),
                per_read: None,
                ..timeout
            };
            match self.inner.await_input(slice) {
                Err(Error::Timeout(_)) => {}
                other => return other,
            }
        }
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}
