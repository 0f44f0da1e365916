"""``SharedLock(reentrant=True)`` (the spiller's lock): its holder takes it again, a signal handler that runs in its
holder between any two bytecodes of a take or a let-go takes it too (as with the OS's ``RLock``: a SIGTERM handler's
shutdown stops the spiller), and under gevent another greenlet of the holder's OS thread waits for it."""

from __future__ import annotations

import sys
import threading
from types import FrameType
from typing import Any

import pytest
from spanbatch import _threads
from spanbatch._threads import SharedLock

from tests.helpers.apps import clean_env, run_app

pytestmark = pytest.mark.timeout(60)


def taken_from_another_thread(lock: SharedLock) -> bool:
    taken: list[bool] = []

    def take() -> None:
        with lock:
            taken.append(True)

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    thread.join(10)
    return taken == [True]


def taken_from_another_thread_within(lock: SharedLock, seconds: float) -> bool:
    """Whether another thread takes ``lock`` within ``seconds`` (it lets go once it does, whenever that is)."""
    taken = threading.Event()

    def take() -> None:
        with lock:
            taken.set()

    threading.Thread(target=take, daemon=True).start()
    return taken.wait(seconds)


def test_a_handler_run_between_any_two_bytecodes_of_its_holders_take_or_let_go_takes_it() -> None:
    lock = SharedLock(reentrant=True)
    handled: list[str] = []

    def handler(frame: FrameType) -> None:  # what a signal handler run there does: takes it and lets go
        with lock:
            handled.append(f"{frame.f_code.co_name}@{frame.f_lasti}")

    # At every bytecode of the lock's own methods, as a signal handler may run at any of them (at every line only on
    # CPython 3.12.1, whose settrace gives no opcode events: still between any two statements).
    def trace(frame: FrameType, event: str, _arg: Any) -> Any:
        if frame.f_code.co_filename != _threads.__file__:
            return None
        frame.f_trace_opcodes = True
        if event in ("line", "opcode"):
            handler(frame)
        return trace

    ended: list[bool] = []

    def hold_twice() -> None:
        sys.settrace(trace)
        try:
            with lock, lock:
                pass
        finally:
            sys.settrace(None)
        ended.append(True)

    holder = threading.Thread(target=hold_twice, daemon=True)
    holder.start()
    holder.join(10)
    assert ended == [True], f"hung in a handler after {handled[-1:]}"
    assert {place.split("@")[0] for place in handled} == {"acquire", "_take", "release", "__enter__", "__exit__"}
    assert taken_from_another_thread(lock)  # let go as many times as it was taken


def test_a_handler_run_at_any_one_line_of_its_holders_take_or_let_go_leaves_it_noted_as_the_holders() -> None:
    # One handler a run, at one line: run at every line, the next line's handler notes the holder again, so the test
    # above passes even if the holder were noted before the depth (a handler between the two then noted it free, and
    # under gevent another greenlet of the holder's thread would take it). The let-go, which only the holder may make,
    # tells whether the holder was still noted.
    def take_and_let_go(at: int) -> tuple[int, str]:
        lock = SharedLock(reentrant=True)
        ran = 0

        def trace(frame: FrameType, event: str, _arg: Any) -> Any:
            nonlocal ran
            if frame.f_code.co_filename != _threads.__file__:
                return None
            if event == "line":
                ran += 1
                if ran == at:
                    with lock:  # what a signal handler run there does
                        pass
            return trace

        sys.settrace(trace)
        try:
            with lock:
                pass
            outcome = "let go" if taken_from_another_thread(lock) else "held"
        except RuntimeError as error:
            outcome = str(error)
        finally:
            sys.settrace(None)
        return ran, outcome

    lines, _ = take_and_let_go(0)
    assert [take_and_let_go(at)[1] for at in range(1, lines + 1)] == ["let go"] * lines


def test_its_holder_takes_it_again_and_another_thread_waits_until_it_is_let_go_as_often() -> None:
    lock = SharedLock(reentrant=True)
    lock.acquire()
    lock.acquire()
    taken = threading.Event()

    def take() -> None:
        with lock:
            taken.set()

    threading.Thread(target=take, daemon=True).start()
    lock.release()
    assert not taken.wait(0.2)  # still held once
    lock.release()
    assert taken.wait(10)


# argv: what the other greenlet of the holder's OS thread does while the holder (which took it twice) pauses.
GREENLETS = """
import sys
from gevent import monkey

monkey.patch_all()
import gevent
from spanbatch._threads import SharedLock

lock = SharedLock(reentrant=True)
seen = []

def holder():
    with lock, lock:
        seen.append("holder took it")
        gevent.sleep(0.05)  # the other greenlet runs meanwhile
        seen.append("holder lets go")

def other_takes():
    with lock:
        seen.append("other took it")

def other_lets_go():
    try:
        lock.release()
        seen.append("other let it go")
    except RuntimeError as error:
        seen.append(f"other: {error}")

other = other_takes if sys.argv[1] == "take" else other_lets_go
gevent.joinall([gevent.spawn(holder), gevent.spawn(other)], raise_error=True)
print(seen)
"""


def test_under_gevent_another_greenlet_of_its_holders_thread_waits_for_it() -> None:
    pytest.importorskip("gevent")
    app = run_app(GREENLETS, "take", env=clean_env(), timeout=30)
    assert app.returncode == 0, app.stderr
    assert app.stdout == "['holder took it', 'holder lets go', 'other took it']\n"


def test_a_let_go_by_another_thread_is_refused_and_leaves_it_sound() -> None:
    # As an RLock's: a RuntimeError, and the holder's take untouched. Measured before the holder was checked first:
    # the refusal had already noted it free, and after the holder let go, the lock named a thread that no longer held
    # it: the next taker failed an assertion.
    lock = SharedLock(reentrant=True)
    lock.acquire()
    refused: list[str] = []

    def let_go() -> None:
        try:
            lock.release()
        except RuntimeError as error:
            refused.append(str(error))

    thread = threading.Thread(target=let_go, daemon=True)
    thread.start()
    thread.join(10)
    assert refused == ["cannot release un-acquired lock"]
    lock.release()
    assert taken_from_another_thread(lock)
    with lock:  # by this thread again
        assert not taken_from_another_thread_within(lock, 0.2)
    assert taken_from_another_thread(lock)


def test_under_gevent_another_greenlet_of_its_holders_thread_cannot_let_it_go() -> None:
    # As gevent's RLock. Measured before: ['holder took it', 'other let it go', 'holder lets go'], then the holder's
    # own let-go raised (the OS lock, of one OS thread for both greenlets, had let the other's go).
    pytest.importorskip("gevent")
    app = run_app(GREENLETS, "let-go", env=clean_env(), timeout=30)
    assert app.returncode == 0, app.stderr
    assert app.stdout == "['holder took it', 'other: cannot release un-acquired lock', 'holder lets go']\n"
