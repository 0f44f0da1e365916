"""A Ctrl-C while the main thread waits for a spill store's lock that another thread holds (the replay thread listing
a large directory) raises KeyboardInterrupt at once, as a wait for the OS's lock does, plain or under gevent (where the
main greenlet waits by pausing): not once the holder lets go. Passed before and after the lock's take became one
native call."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.helpers.apps import clean_env, go_on, started_app

pytestmark = pytest.mark.timeout(60)

# argv: gevent|plain, the spill directory.
APP = """
import sys

if sys.argv[1] == "gevent":
    from gevent import monkey

    monkey.patch_all()
import signal, threading

from spanbatch._spill import SpillStore
from spanbatch._threads import start_thread

signal.signal(signal.SIGINT, signal.default_int_handler)  # as an interactive program has it
store = SpillStore(sys.argv[2], 1 << 20)
Event = monkey.get_original("threading", "Event") if sys.argv[1] == "gevent" else threading.Event  # a real thread's
holding, let_go = Event(), Event()


def hold():
    with store._lock:
        holding.set()
        let_go.wait(30)


holder = start_thread(hold, "holder")
holding.wait(30)
print("ready", flush=True)
try:
    store.counts()
    print("took it", flush=True)
except KeyboardInterrupt:
    print("interrupted while", "held" if not let_go.is_set() and holder.is_alive() else "let go", flush=True)
let_go.set()
holder.join(30)
sys.stdin.readline()
"""


@pytest.mark.parametrize("patched", ["plain", "gevent"])
def test_a_ctrl_c_while_waiting_for_a_spill_lock_another_thread_holds_raises_at_once(
    tmp_path: Path, patched: str
) -> None:
    if patched == "gevent":
        pytest.importorskip("gevent")
    with started_app(APP, patched, str(tmp_path), env=clean_env()) as app:
        assert app.stdout is not None
        assert app.stdout.readline() == "ready\n", app.stderr.read() if app.stderr else ""
        time.sleep(0.3)  # waiting by then, most likely; a SIGINT that comes sooner interrupts it all the same
        app.send_signal(signal.SIGINT)
        said = app.stdout.readline()
        go_on(app)
        assert app.wait(30) == 0, app.stderr.read() if app.stderr else ""
    assert said == "interrupted while held\n"
