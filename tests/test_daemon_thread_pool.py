"""DaemonThreadPool (``spanbatch._executor``), the default executor of an async exporter's private loop, on its own:
what a call given up, a call cancelled, a shutdown, a thread that cannot be started or one that its caller's callback
ends does to the other calls, and what a call that raised still holds. The pools here run one thread at most, so that
every call but the first has to wait for it."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from typing import NoReturn

import pytest
from spanbatch import _executor
from spanbatch._executor import DaemonThreadPool

from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(60)

# Far longer than any call here takes: only a call that nothing runs waits this long.
WAIT_SECONDS = 10.0
NO_THREAD = "cannot start a thread"


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """What the calls that hang wait for; set when the test ends, whatever happened."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def pool(release: threading.Event) -> Iterator[DaemonThreadPool]:
    """A pool of one thread at most, let go (not waited for) when the test ends."""
    pool = DaemonThreadPool("test-pool", max_threads=1)
    yield pool
    pool.shutdown(wait=False, cancel_futures=True)


def fails_with(error: BaseException) -> Callable[..., NoReturn]:
    def start_thread(*args: object) -> NoReturn:
        raise error

    return start_thread


def test_a_call_given_up_while_it_runs_frees_its_thread_for_the_next(
    pool: DaemonThreadPool, release: threading.Event
) -> None:
    hung = pool.submit(release.wait)
    assert wait_until(hung.running)
    assert not hung.cancel()  # as asyncio cancels the future of a call it awaited: too late, given up
    assert pool.submit(lambda: "next").result(WAIT_SECONDS) == "next"
    assert not hung.done()
    release.set()
    assert hung.result(WAIT_SECONDS) is True  # its thread finished it, nobody waiting


def test_a_call_cancelled_before_it_starts_never_runs(pool: DaemonThreadPool, release: threading.Event) -> None:
    ran: list[str] = []
    running = pool.submit(release.wait)
    queued = pool.submit(ran.append, "cancelled")
    assert queued.cancel()
    release.set()
    assert running.result(WAIT_SECONDS) is True
    assert pool.submit(ran.append, "next").result(WAIT_SECONDS) is None
    assert (ran, queued.cancelled()) == (["next"], True)


def test_shutdown_that_cancels_the_futures_cancels_the_queued_calls_and_lets_the_running_one_end(
    pool: DaemonThreadPool, release: threading.Event
) -> None:
    ran: list[int] = []
    running = pool.submit(release.wait)
    assert wait_until(running.running)
    queued = [pool.submit(ran.append, n) for n in range(2)]
    pool.shutdown(wait=False, cancel_futures=True)
    assert [call.cancelled() for call in queued] == [True, True]
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(ran.append, 2)
    release.set()
    assert running.result(WAIT_SECONDS) is True
    pool.shutdown(wait=True)  # returns once its thread has ended
    assert ran == []


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("can't start new thread")], ids=type)
def test_a_call_whose_thread_cannot_be_started_is_not_left_to_run_later(
    pool: DaemonThreadPool, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    ran: list[str] = []
    monkeypatch.setattr(_executor, "start_thread", fails_with(error))
    with pytest.raises(type(error)):
        pool.submit(ran.append, "refused")
    monkeypatch.undo()
    assert pool.submit(lambda: ran.append(threading.current_thread().name)).result(WAIT_SECONDS) is None
    assert ran == ["test-pool_1"]  # the first thread started, and the only call it ran


def test_calls_queued_when_no_thread_is_left_nor_can_be_started_fail_at_once(
    pool: DaemonThreadPool, release: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    hung = pool.submit(release.wait)
    assert wait_until(hung.running)
    queued = pool.submit(lambda: "never")
    # As at interpreter exit on 3.12+: no thread can be started to replace the one given up.
    monkeypatch.setattr(_executor, "start_thread", fails_with(RuntimeError("can't create new thread at shutdown")))
    hung.cancel()
    assert queued.done()  # it would otherwise wait for its caller's timeout
    assert isinstance(queued.exception(), RuntimeError)
    assert NO_THREAD in str(queued.exception())
    with pytest.raises(RuntimeError, match=NO_THREAD):
        pool.submit(lambda: "refused too")


def test_a_thread_ended_by_its_callers_callback_is_replaced(
    pool: DaemonThreadPool, release: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    ended: list[type[BaseException]] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: ended.append(args.exc_type))

    def exits(_: object) -> NoReturn:
        raise SystemExit  # concurrent.futures logs an Exception from a callback; anything else ends the thread

    first = pool.submit(release.wait)
    first.add_done_callback(exits)
    release.set()
    assert first.result(WAIT_SECONDS) is True
    assert pool.submit(lambda: "next").result(WAIT_SECONDS) == "next"
    assert ended == [SystemExit]


class Batch:
    """What a call is given (a send's batch, most often)."""


def test_a_call_that_raises_lets_go_of_what_it_was_given(pool: DaemonThreadPool) -> None:
    batch = Batch()
    freed = weakref.ref(batch)
    call = pool.submit(int, batch)  # a builtin: it raises with no frame of its own to hold its argument
    del batch
    assert isinstance(call.exception(WAIT_SECONDS), TypeError)
    assert freed() is None  # its caller keeps the error, and the error its traceback
