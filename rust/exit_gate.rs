//! Interpreter exit: once spanbatch's last atexit hook has run, the lanes it shut down call no
//! Python code from this crate, and their workers never ask for the GIL back in it.
//!
//! Once finalization begins, `CPython` before 3.14 ends a thread that takes the GIL by unwinding
//! it (`pthread_exit`) from wherever it is. Through Rust frames that is undefined behaviour: linked
//! by zig alone, with zig's own unwinder, it crashed (SIGSEGV; `build.rs` now links `libgcc_s`),
//! and with `libgcc_s` `PyO3` hangs a thread unwound while it takes the GIL back in its detach.
//! Python code our frames call (a span's property, a collection's finalizer) can be cut off the
//! same way, out of `PyO3`'s reach.
//!
//! No API tells a thread, without the GIL, that finalization is about to begin, so the last
//! atexit hook says it: `close_exit_gate`, once it has flushed every lane nobody shut down
//! (and shut down those that did not drain). From then on the code of a lane stopped before
//! that (shut down, or abandoned) stops short: its worker, done
//! with its work here, parks for good instead of taking the GIL back (as `CPython` 3.14 does to
//! any thread), and lane code about to call into Python (reading spans, making a log record
//! readable) does not; the process's exit ends them. Closing first waits for the threads
//! already through to be done, so that none is caught between its look and the GIL.
//!
//! A thread waiting for one of spanbatch's locks (`shared_lock.rs`), or under gevent for a flush
//! or room (`waits.rs`), is not parked: it may hold the application's locks, and the atexit hooks
//! registered before spanbatch's (`logging.shutdown`, an application's) run after the gate closes
//! and may join it or take them. It goes on; once the gate stops it, it waits without the GIL
//! instead of calling a greenlet's pause, and takes the GIL back only in `PyO3`'s detach, which
//! hangs it once the interpreter finalizes (`PyO3` 0.30 catches that unwind: measured with the
//! release and the zig-built wheel on 3.10, 3.12 and 3.13, waiters woken every 50 ms during
//! finalization stop waking and the exit's rc is 0). The gate stops nothing else: a lane that hook
//! flushed and left running, or one made later (in an atexit hook that runs after ours), works
//! and drains as before, for the atexit hooks after ours to end items into; and so does the
//! exporters' code, which other threads run too (a stock processor's worker). A thread of
//! theirs that asks for the GIL once finalization has begun is hung by `PyO3`, and one caught in
//! Python code called from here by `HangIfUnwound`, if the unwind reaches it: from a lock's
//! blocking `acquire` called here it did not, and the process aborted ("FATAL: exception not
//! rethrown"), so a wait that may outlast the gate's closing does not run in `hang_if_unwound`.
//! The thread that closed the gate passes it (it is the one that finalizes), and so does a
//! forked child.

use pyo3::prelude::*;
use std::cell::Cell;
use std::process;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

/// Longest the closing thread waits for threads through the gate: they need only the GIL it
/// lets go of, or to finish reading a chunk of spans.
const CLOSE_WAIT: Duration = Duration::from_millis(200);

static GATE: Gate = Gate::new();

thread_local! {
    /// How many times this thread is through the gate (nested stretches): what a forked child,
    /// where only this thread goes on, counts as through.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

struct Gate {
    closed: AtomicBool,
    /// Threads through the gate: asking for the GIL back, or calling into Python.
    through: AtomicUsize,
    closer: OnceLock<Closer>,
}

/// The thread that closed the gate, in its process: a forked child's threads are not stopped.
struct Closer {
    thread: ThreadId,
    pid: u32,
}

impl Gate {
    const fn new() -> Self {
        Self {
            closed: AtomicBool::new(false),
            through: AtomicUsize::new(0),
            closer: OnceLock::new(),
        }
    }

    /// Whether the calling thread may go through; if so, it counts as through until `leave`.
    /// A closed gate stops only a thread that is `stoppable`, looked at then (never while the
    /// gate is open: the hot paths pay two atomic operations). `SeqCst`, against `close`: either
    /// the closer sees this thread through and waits for it, or this thread sees the gate closed.
    fn enter(&self, stoppable: impl FnOnce() -> bool) -> bool {
        self.through.fetch_add(1, Ordering::SeqCst);
        if self.stops_this_thread() && stoppable() {
            self.through.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        DEPTH.set(DEPTH.get() + 1);
        true
    }

    fn leave(&self) {
        DEPTH.set(DEPTH.get() - 1);
        self.through.fetch_sub(1, Ordering::SeqCst);
    }

    /// Who closed the gate, if it is closed in this process (a forked child's is open).
    fn closed_here(&self) -> Option<&Closer> {
        self.closed
            .load(Ordering::SeqCst)
            .then(|| self.closer.get())
            .flatten()
            .filter(|closer| closer.pid == process::id())
    }

    fn stops_this_thread(&self) -> bool {
        self.closed_here()
            .is_some_and(|closer| closer.thread != thread::current().id())
    }

    fn close(&self) {
        // Before `closed`: a thread that sees the gate closed sees who closed it.
        let _ = self.closer.set(Closer {
            thread: thread::current().id(),
            pid: process::id(),
        });
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Waits until no thread but the calling one is through, or `deadline`; returns whether none
    /// is. What the calling thread is through for (a greenlet of it paused in Python code called
    /// from here) cannot go on while it waits: waiting for it would only wait out `deadline`.
    fn wait_for_others(&self, deadline: Instant) -> bool {
        while self.through.load(Ordering::SeqCst) > DEPTH.get() {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_micros(50));
        }
        true
    }
}

/// Dropped only if the Python code a thread calls from here never returns to it: a Rust panic
/// goes on (`PyO3` raises it), and `CPython` ending the thread at exit hangs it here, as `PyO3`
/// hangs one that asks for the GIL back then. Unwound further, through `PyO3`'s frames, that
/// aborts the process ("exception not rethrown").
struct HangIfUnwound;

impl Drop for HangIfUnwound {
    fn drop(&mut self) {
        GATE.leave();
        if thread::panicking() {
            return;
        }
        park_for_good();
    }
}

/// `Python::detach` for this crate (clippy refuses the other): runs `work` without the GIL;
/// once the gate is closed, the worker of a lane stopped before it then parks for good instead
/// of taking the GIL back.
pub fn detach<T: Send>(py: Python<'_>, work: impl Send + FnOnce() -> T) -> T {
    detach_unless_stopped(
        py,
        crate::handoff::exports_for_a_lane_stopped_before_exit,
        work,
    )
}

/// `detach` for a thread with nothing left to do once the gate is closed (the drop teller,
/// `drop_news.rs`): then it parks for good instead of taking the GIL back.
pub fn detach_until_exit<T: Send>(py: Python<'_>, work: impl Send + FnOnce() -> T) -> T {
    detach_unless_stopped(py, || true, work)
}

/// `detach`, for a thread that the closed gate stops if `stoppable()`: it then parks for good
/// instead of taking the GIL back.
#[allow(clippy::disallowed_methods)]
pub fn detach_unless_stopped<T: Send>(
    py: Python<'_>,
    stoppable: impl Send + FnOnce() -> bool,
    work: impl Send + FnOnce() -> T,
) -> T {
    let out = py.detach(|| {
        let out = work();
        // Looked at once the work is done: shutdown may have begun meanwhile.
        if !GATE.enter(stoppable) {
            park_for_good();
        }
        out
    });
    GATE.leave();
    out
}

/// `detach` for a thread that goes on whatever the gate (one waiting for a lock, or for a flush
/// or room under gevent: `shared_lock.rs`, `waits.rs`): it takes the GIL back after `work` until
/// the interpreter finalizes, then `PyO3` hangs it in that take, as `CPython` 3.14 does.
pub fn detach_and_go_on<T: Send>(py: Python<'_>, work: impl Send + FnOnce() -> T) -> T {
    detach_unless_stopped(py, || false, work)
}

/// Whether the calling thread's waits may still pause as a greenlet (Python code that may let
/// go of the GIL): not once the closed gate stops it in its own waits, which then wait without
/// the GIL instead. A pause takes the GIL back outside `PyO3`'s detach, and a real thread that
/// goes on doing so while the interpreter finalizes hung the exit on 3.10 (10 exits of 10; the
/// main thread waited for it to take the GIL it asked for, which `CPython` ended it in).
#[pyfunction]
pub fn greenlets_may_pause() -> bool {
    !(GATE.stops_this_thread() && crate::handoff::stopped_in_its_own_waits())
}

/// What a thread the closed gate stops does, detached: the process's exit ends it.
fn park_for_good() -> ! {
    loop {
        thread::park();
    }
}

/// Runs lane code that may run Python code on this thread (`call`), unless the gate is closed
/// and the lane stopped before it closed (`None`). A thread still in that code when the
/// interpreter finalizes hangs here.
pub fn calling_python<T>(
    lane_stopped: impl FnOnce() -> bool,
    call: impl FnOnce() -> T,
) -> Option<T> {
    GATE.enter(lane_stopped).then(|| through(call))
}

/// Runs code that may run Python code on this thread (`call`) whatever the gate (an exporter's,
/// which other threads run too): a thread still in it when the interpreter finalizes hangs here.
pub fn hang_if_unwound<T>(call: impl FnOnce() -> T) -> T {
    GATE.enter(|| false);
    through(call)
}

/// `call`, for a thread through the gate; it leaves the gate after.
fn through<T>(call: impl FnOnce() -> T) -> T {
    let unwound = HangIfUnwound;
    let out = call();
    std::mem::forget(unwound);
    GATE.leave();
    out
}

/// In a forked child: of the parent's threads through the gate, only the one that forked is here.
#[pyfunction]
pub fn exit_gate_after_fork_in_child() {
    GATE.through.store(DEPTH.get(), Ordering::SeqCst);
}

/// Whether spanbatch's last atexit hook has closed the gate, in this process.
pub fn closed() -> bool {
    GATE.closed_here().is_some()
}

/// Closes the gate: called by spanbatch's last atexit hook, once every lane is shut down.
/// Waits, without the GIL, up to `CLOSE_WAIT` for the threads already through.
#[pyfunction]
pub fn close_exit_gate(py: Python<'_>) {
    GATE.close();
    let deadline = Instant::now() + CLOSE_WAIT;
    detach(py, || GATE.wait_for_others(deadline));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_closed_gate_stops_only_stoppable_threads_but_its_closer() {
        let gate = Arc::new(Gate::new());
        assert!(gate.enter(|| true), "open: anyone");
        gate.leave();
        gate.close();
        assert!(gate.enter(|| true), "the closer passes");
        gate.leave();
        let other = Arc::clone(&gate);
        assert!(!thread::spawn(move || other.enter(|| true)).join().unwrap());
        assert_eq!(
            gate.through.load(Ordering::SeqCst),
            0,
            "a stopped thread is not counted"
        );
        let other = Arc::clone(&gate);
        assert!(thread::spawn(move || other.enter(|| false)).join().unwrap());
        assert_eq!(
            gate.through.load(Ordering::SeqCst),
            1,
            "through until it leaves"
        );
    }

    #[test]
    fn closing_waits_for_the_threads_through() {
        let gate = Arc::new(Gate::new());
        let (entered, through) = (Arc::new(std::sync::Barrier::new(2)), Arc::clone(&gate));
        let waiting = Arc::clone(&entered);
        let thread = thread::spawn(move || {
            assert!(through.enter(|| false));
            waiting.wait();
            thread::sleep(Duration::from_millis(20));
            through.leave();
        });
        entered.wait();
        gate.close();
        assert!(gate.wait_for_others(Instant::now() + Duration::from_secs(5)));
        thread.join().unwrap();
    }

    #[test]
    fn the_wait_for_threads_through_is_bounded() {
        let gate = Arc::new(Gate::new());
        let through = Arc::clone(&gate);
        thread::spawn(move || assert!(through.enter(|| false)))
            .join()
            .unwrap();
        gate.close();
        let began = Instant::now();
        assert!(!gate.wait_for_others(began + Duration::from_millis(10)));
        assert!(began.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn closing_does_not_wait_for_what_the_closer_itself_is_through_for() {
        let gate = Gate::new();
        assert!(gate.enter(|| false));
        gate.close();
        assert!(gate.wait_for_others(Instant::now() + Duration::from_secs(60)));
        gate.leave();
    }
}
