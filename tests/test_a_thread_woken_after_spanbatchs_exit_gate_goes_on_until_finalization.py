"""A thread woken in one of spanbatch's waits after its last atexit hook has run goes on, as with the OS's locks and
the stock processors: the atexit hooks registered before ``import spanbatch`` (``logging.shutdown``, an
application's) run after that hook, while daemon threads still run. Parked there for good, holding what it held, the
thread hung a later hook that joined it or took its lock, and with it the exit (revB)."""

from __future__ import annotations

import pytest

from tests.helpers.apps import clean_env, run_app

pytestmark = pytest.mark.timeout(120)

# How long a hook after spanbatch's waits for the woken thread: it needs only the lock it is given.
HOOK_WAIT = 10

# A daemon thread waits for a spill lock; a hook after spanbatch's last one lets it go, then joins the thread.
JOINED = f"""
import atexit, threading, time


def after_spanbatchs_last_hook():
    lock.release()
    waiter.join({HOOK_WAIT})
    print("joined" if not waiter.is_alive() else "still waiting", flush=True)


atexit.register(after_spanbatchs_last_hook)  # before spanbatch's import: runs after its hooks
from spanbatch._threads import shared_lock

lock = shared_lock()
lock.acquire()
waiting = threading.Event()


def wait():
    waiting.set()
    with lock:
        pass


waiter = threading.Thread(target=wait, daemon=True)
waiter.start()
waiting.wait(30)
time.sleep(0.1)  # waiting for the lock by then
"""


def test_a_hook_after_spanbatchs_joins_a_daemon_thread_woken_in_a_wait_for_a_spill_lock() -> None:
    done = run_app(JOINED, env=clean_env(), timeout=60)
    assert done.stdout.split() == ["joined"], done.stderr[-2000:]
    assert done.returncode == 0, done.stderr[-2000:]


# A daemon thread holds spill lock A and waits for B (as an eviction takes the store's tally lock); a hook after
# spanbatch's last one lets B go, then takes A. faulthandler ends the process (rc 1) if that take hangs.
TAKES_ITS_LOCK = f"""
import atexit, faulthandler, threading, time


def after_spanbatchs_last_hook():
    faulthandler.dump_traceback_later({HOOK_WAIT}, exit=True)
    inner.release()
    with outer:
        print("took it", flush=True)
    faulthandler.cancel_dump_traceback_later()


atexit.register(after_spanbatchs_last_hook)  # before spanbatch's import: runs after its hooks
from spanbatch._threads import shared_lock

outer, inner = shared_lock(), shared_lock()
inner.acquire()
waiting = threading.Event()


def hold_and_wait():
    with outer:
        waiting.set()
        with inner:
            pass


threading.Thread(target=hold_and_wait, daemon=True).start()
waiting.wait(30)
time.sleep(0.1)  # waiting for the inner lock by then
"""


def test_a_hook_after_spanbatchs_takes_a_lock_held_by_a_daemon_thread_woken_in_a_wait_for_a_spill_lock() -> None:
    done = run_app(TAKES_ITS_LOCK, env=clean_env(), timeout=60)
    assert done.stdout.split() == ["took", "it"], done.stderr[-2000:]
    assert done.returncode == 0, done.stderr[-2000:]


# Under gevent, a real daemon OS thread flushes, under an application's (real) lock, a lane that spanbatch's last hook
# drains and leaves open, whose export takes 20 ms; a hook after spanbatch's takes that lock.
FLUSHES_UNDER_ITS_LOCK = f"""
from gevent import monkey

monkey.patch_all()
import atexit


def after_spanbatchs_last_hook():
    print("took it" if app_lock.acquire(True, {HOOK_WAIT}) else "still held", flush=True)


atexit.register(after_spanbatchs_last_hook)  # before spanbatch's import: runs after its hooks
import spanbatch
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

blocking_sleep = monkey.get_original("time", "sleep")
app_lock = monkey.get_original("threading", "Lock")()


class Slow(SpanExporter):
    def export(self, spans):
        blocking_sleep(0.02)
        return SpanExportResult.SUCCESS


provider = TracerProvider(shutdown_on_exit=False)
provider.add_span_processor(spanbatch.BatchSpanProcessor(Slow()))
tracer = provider.get_tracer("t")


def flush():
    while True:
        with app_lock:
            tracer.start_span("s").end()
            provider.force_flush(60_000)
        blocking_sleep(0.001)


monkey.get_original("_thread", "start_new_thread")(flush, ())
blocking_sleep(0.3)
"""


def test_a_hook_after_spanbatchs_takes_the_lock_a_real_thread_flushes_under_with_gevent() -> None:
    pytest.importorskip("gevent")
    done = run_app(FLUSHES_UNDER_ITS_LOCK, env=clean_env(), timeout=60)
    assert done.stdout.split() == ["took", "it"], done.stderr[-2000:]
    assert done.returncode == 0, done.stderr[-2000:]


# The same, the thread waiting for room under ``drop_policy="block"`` (a queue of 2 the export empties one span at a
# time): past the gate its wait, made from Python code on 3.11+, goes on as the native one, without pausing.
WAITS_FOR_ROOM_UNDER_ITS_LOCK = FLUSHES_UNDER_ITS_LOCK.replace(
    "spanbatch.BatchSpanProcessor(Slow())",
    "spanbatch.BatchSpanProcessor(Slow(), max_queue_size=2, max_export_batch_size=1, schedule_delay_millis=1,"
    ' drop_policy="block", block_timeout_millis=60_000)',
).replace("            provider.force_flush(60_000)\n", "")


def test_a_hook_after_spanbatchs_takes_the_lock_a_real_thread_waits_for_room_under_with_gevent() -> None:
    pytest.importorskip("gevent")
    assert "block" in WAITS_FOR_ROOM_UNDER_ITS_LOCK
    assert "force_flush" not in WAITS_FOR_ROOM_UNDER_ITS_LOCK
    done = run_app(WAITS_FOR_ROOM_UNDER_ITS_LOCK, env=clean_env(), timeout=60)
    assert done.stdout.split() == ["took", "it"], done.stderr[-2000:]
    assert done.returncode == 0, done.stderr[-2000:]
