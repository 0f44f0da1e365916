"""Ctrl-C storms: an app whose main thread uses one of spanbatch's locks in a loop while this process sends it SIGINT
as fast as a terminal's user never could, and says whether every KeyboardInterrupt left the lock free."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers.apps import clean_env, go_on, started_app

# argv: gevent|plain, store|spiller, the spill directory, how many KeyboardInterrupts to catch. Its main thread takes
# and lets go the lock in a loop (a spill store's, reading its counts; the spiller's, as the exit marks it); each
# KeyboardInterrupt its SIGINT handler raises there is caught, then another thread (a real OS thread) must take the
# lock within 10 s. It prints the interrupts caught and, if one left the lock held, stops at once and says so.
APP = """
import sys

if sys.argv[1] == "gevent":
    from gevent import monkey

    monkey.patch_all()
import signal, time

from spanbatch._spill import Sent, SpillStore
from spanbatch._threads import start_thread
from spanbatch.exporter._spilling import Spiller

lock_of, directory, wanted = sys.argv[2], sys.argv[3], int(sys.argv[4])
store = SpillStore(directory, 1 << 20)
spiller = Spiller(store, lambda _payload: Sent.DELIVERED)
take_and_let_go = {"store": store.counts, "spiller": lambda: spiller.exit_begins(None)}[lock_of]
armed = False


def interrupt(_signum, _frame):
    global armed
    if armed:  # only inside the loop: a KeyboardInterrupt elsewhere would end the app
        armed = False
        raise KeyboardInterrupt


def free():
    taken = []
    thread = start_thread(lambda: taken.append(take_and_let_go()), "taker")
    thread.join(10)
    return len(taken) == 1


signal.signal(signal.SIGINT, interrupt)
print("ready", flush=True)
interrupts, held = 0, False
deadline = time.monotonic() + 30
while interrupts < wanted and not held and time.monotonic() < deadline:
    armed = True
    try:
        for _ in range(1000):
            take_and_let_go()
        armed = False
    except KeyboardInterrupt:
        interrupts += 1
        held = not free()
signal.signal(signal.SIGINT, signal.SIG_IGN)
print(f"{interrupts} interrupts, " + ("the last left it held" if held else "the lock free after each"), flush=True)
sys.stdin.readline()
"""


@contextmanager
def sigints_to(pid: int) -> Iterator[None]:
    """SIGINT to ``pid`` every 0.2 ms until the block ends: from another process, as a terminal sends it, so that it
    lands wherever the app's main thread is, not where it lets go of the GIL."""
    done = threading.Event()

    def send() -> None:
        while not done.is_set():
            os.kill(pid, signal.SIGINT)
            time.sleep(0.0002)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        yield
    finally:
        done.set()
        sender.join()


def ctrl_c_storm(*, patched: str, lock_of: str, directory: Path, interrupts: int) -> str:
    """What the app (see ``APP``) says once ``interrupts`` KeyboardInterrupts landed in its loop (or one left the lock
    held, or 30 s passed)."""
    with started_app(APP, patched, lock_of, str(directory), str(interrupts), env=clean_env()) as app:
        assert app.stdout is not None
        assert app.stdout.readline() == "ready\n", app.stderr.read() if app.stderr else ""
        with sigints_to(app.pid):  # the app ignores SIGINT once it printed its answer and waits until told
            said = app.stdout.readline()
        go_on(app)
        assert app.wait(30) == 0, app.stderr.read() if app.stderr else ""
    return said.strip()
