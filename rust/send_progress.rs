//! `SendProgress`: when the requests of one export call last moved on, read by another thread while the call
//! runs. The batches of an exporter's `export_many` are sent in turn, each within its own timeout: a flush or
//! shutdown waiting behind the call gives it up once one batch has run past `export_timeout_millis` since the last
//! one ended, not once the whole call has had the timeout once per batch (`_export_clock.py`).

use pyo3::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[pyclass(frozen, name = "SendProgress", module = "spanbatch._core")]
pub struct PySendProgress {
    made: Instant,
    /// Nanoseconds from `made` to the last `mark` (0: none yet).
    marked: AtomicU64,
}

impl PySendProgress {
    /// Notes that a batch's request ended now; callable without the GIL (`send_all` marks from its detached stretch).
    pub fn mark_now(&self) {
        // Saturates past 584 years.
        let nanos = u64::try_from(self.made.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.marked.fetch_max(nanos, Ordering::Relaxed);
    }
}

#[pymethods]
impl PySendProgress {
    #[new]
    fn new() -> Self {
        Self {
            made: Instant::now(),
            marked: AtomicU64::new(0),
        }
    }

    /// Notes that a batch ended now.
    fn mark(&self) {
        self.mark_now();
    }

    /// Seconds since the last mark, or since this was made before any.
    fn idle_seconds(&self) -> f64 {
        let marked = std::time::Duration::from_nanos(self.marked.load(Ordering::Relaxed));
        self.made.elapsed().saturating_sub(marked).as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread::sleep;
    use std::time::Duration;

    #[test]
    fn idle_seconds_count_from_the_last_mark() {
        let progress = PySendProgress::new();
        sleep(Duration::from_millis(30));
        assert!(progress.idle_seconds() >= 0.03);
        progress.mark_now();
        assert!(progress.idle_seconds() < 0.03);
    }
}
