//! News of a lane's first full queue, for the thread that tells it (`_drop_teller.py`).
//!
//! A lane's worker tells its drops once its export returns; an export that hangs (a backend that
//! does not answer: the commonest cause of a full queue) would hold the first line back as long,
//! where the stock processor logs it at once. The push must not log (at exit it runs on daemon
//! threads that finalization unwinds: see `exit_gate.rs`), so on its cold path, a core's first
//! full-queue drop, it wakes the teller, which waits here without the GIL and without a timeout:
//! an idle process pays nothing.
//!
//! One per process: a forked child makes its own (a thread of the parent may have held this lock
//! at the fork), and a core tells only the news it was made with, in the process it was made in.

use crate::sync::locked;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

#[derive(Debug, Default)]
pub struct News {
    /// Told and not yet taken by the teller.
    pending: AtomicBool,
    lock: Mutex<()>,
    teller: Condvar,
}

impl News {
    /// A lane's first full queue: wakes the teller. Takes the lock so that the wake-up cannot fall
    /// between the teller's look at `pending` and its sleep.
    pub fn tell(&self) {
        let _guard = locked(&self.lock);
        self.pending.store(true, Ordering::SeqCst);
        self.teller.notify_all();
    }

    /// Blocks until news is told, and takes it: news told meanwhile is taken with it.
    pub fn wait(&self) {
        let mut guard = locked(&self.lock);
        while !self.pending.swap(false, Ordering::SeqCst) {
            guard = self
                .teller
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// This process's news, given to each core it makes (`BatchCore(news=...)`) and waited for by
/// its teller thread.
#[pyclass(frozen, name = "DropNews", module = "spanbatch._core")]
pub struct PyDropNews {
    pub(crate) news: Arc<News>,
}

#[pymethods]
impl PyDropNews {
    #[new]
    fn py_new() -> Self {
        Self {
            news: Arc::default(),
        }
    }

    /// Waits, detached, until a core made with this news has its first full queue. Once the exit
    /// gate is closed it never returns: the teller has nothing left to tell (`exit_gate.rs`).
    fn wait(&self, py: Python<'_>) {
        crate::exit_gate::detach_until_exit(py, || self.news.wait());
    }

    fn __repr__(&self) -> String {
        format!(
            "DropNews(pending={})",
            self.news.pending.load(Ordering::SeqCst)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;
    use std::time::{Duration, Instant};

    #[test]
    fn news_told_before_the_wait_is_taken_at_once() {
        let news = News::default();
        news.tell();
        news.tell();
        news.wait();
        assert!(!news.pending.load(Ordering::SeqCst), "taken, both at once");
    }

    #[test]
    fn a_waiting_teller_is_woken_by_news_told_later() {
        let news = Arc::new(News::default());
        let teller = {
            let news = Arc::clone(&news);
            thread::spawn(move || news.wait())
        };
        thread::sleep(Duration::from_millis(20));
        let told = Instant::now();
        news.tell();
        teller.join().unwrap();
        assert!(told.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn news_racing_the_teller_going_to_sleep_is_never_lost() {
        // Each round the teller waits for the round's news; a lost wake-up leaves the round
        // unfinished, which fails the test at its deadline.
        let news = Arc::new(News::default());
        let finished = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let rounds = 2_000;
        let teller = {
            let (news, finished) = (Arc::clone(&news), Arc::clone(&finished));
            thread::spawn(move || {
                for round in 1..=rounds {
                    news.wait();
                    finished.store(round, Ordering::SeqCst);
                }
            })
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        for round in 1..=rounds {
            news.tell();
            while finished.load(Ordering::SeqCst) < round {
                assert!(Instant::now() < deadline, "news lost in round {round}");
                thread::yield_now();
            }
        }
        teller.join().unwrap();
    }
}
