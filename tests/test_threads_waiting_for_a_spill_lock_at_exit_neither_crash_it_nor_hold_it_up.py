"""Daemon threads waiting for one of spanbatch's spill locks (``_threads.shared_lock``) when the interpreter exits.

A waiter woken while the interpreter finalizes must not be ended by CPython (``pthread_exit``, before 3.14) from inside
the native take: through Rust frames that aborted the process ("FATAL: exception not rethrown", rc 134; every run on
3.10 to 3.13 while the take blocked in the OS lock's own ``acquire``). Nor may a blocked waiter hold the exit up: while
it counted as inside spanbatch, the exit gate's closing waited its whole 200 ms for it."""

from __future__ import annotations

import pytest

from tests.helpers.apps import clean_env, run_app

pytestmark = pytest.mark.timeout(120)

# argv: when the main thread lets go of the locks the waiters loop on (an atexit hook that runs before spanbatch's last
# one, or after it: registered before spanbatch is imported).
WOKEN_AT_EXIT = """
import atexit, sys, threading, time

locks = []
if sys.argv[1] == "after spanbatch's last hook":
    atexit.register(lambda: [lock.release() for lock in locks])
from spanbatch._threads import shared_lock

locks += [shared_lock(), shared_lock(reentrant=True)]
for lock in locks:
    lock.acquire()
started = threading.Barrier(17)


def waiter(lock):
    started.wait()
    for _ in range(100_000):
        with lock:
            pass


for i in range(16):
    threading.Thread(target=waiter, args=(locks[i % 2],), daemon=True).start()
started.wait()
time.sleep(0.05)  # waiting by then
if sys.argv[1] == "before spanbatch's last hook":
    atexit.register(lambda: [lock.release() for lock in locks])
"""


@pytest.mark.parametrize("let_go", ["before spanbatch's last hook", "after spanbatch's last hook"])
def test_daemon_threads_woken_in_a_wait_for_a_spill_lock_at_exit_never_crash_it(let_go: str) -> None:
    for run in range(2):
        done = run_app(WOKEN_AT_EXIT, let_go, env=clean_env(), timeout=60)
        assert "fatal" not in done.stderr.lower(), (run, done.stderr[-2000:])  # "FATAL: ...", "Fatal Python error"
        assert done.returncode == 0, (run, done.returncode, done.stderr[-2000:])


# argv: gevent|plain. Prints how long spanbatch's last atexit hook (which closes the exit gate) took, read by the hooks
# around it, while a daemon thread (a greenlet under gevent, which pauses) waits for a lock a real OS thread holds.
BLOCKED_AT_EXIT = """
import sys

if sys.argv[1] == "gevent":
    from gevent import monkey

    monkey.patch_all()
import atexit, threading, time

atexit.register(lambda: print(time.monotonic() - began[0], flush=True))
from spanbatch._threads import start_thread, shared_lock

began = []
atexit.register(lambda: began.append(time.monotonic()))
lock = shared_lock()
Event = monkey.get_original("threading", "Event") if sys.argv[1] == "gevent" else threading.Event  # a real thread's
held, waiting = Event(), threading.Event()


def hold():
    with lock:
        held.set()
        Event().wait(3600)


def wait():
    waiting.set()
    lock.acquire()


start_thread(hold, "holder")
held.wait(30)
threading.Thread(target=wait, daemon=True).start()
waiting.wait(30)
time.sleep(0.1)  # waiting for the lock by then
"""

# How long the exit gate's closing waits at most for the threads inside spanbatch (``CLOSE_WAIT``).
CLOSE_WAIT = 0.2


@pytest.mark.parametrize("patched", ["plain", "gevent"])
def test_a_daemon_thread_waiting_for_a_spill_lock_does_not_hold_the_exit_up(patched: str) -> None:
    if patched == "gevent":
        pytest.importorskip("gevent")
    # The least of a few runs: a loaded machine may stall one, never make one shorter than the gate's wait. Measured
    # while the waiter held the gate's closing up: 0.20 s or more every time; since, a few milliseconds.
    took = []
    for _ in range(3):
        done = run_app(BLOCKED_AT_EXIT, patched, env=clean_env(), timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
        took.append(float(done.stdout))
    assert min(took) < CLOSE_WAIT * 0.75, took
