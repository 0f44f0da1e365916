"""A drop report that comes back on the thread already inside its reporter's bookkeeping (a signal handler that logs,
landing there) neither waits for that thread, nor tells in a second line within the interval, nor tells an echo.

The clock the reporter reads inside its bookkeeping stands in for the signal: the first read after the counts told
are booked runs the nested call, as a handler landing there would. (The storm of real signals is in
``test_a_signal_handler_that_logs_while_spanbatch_logs_does_not_deadlock.py``.)
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator

import pytest
from spanbatch import _drops
from spanbatch._drops import DropReporter
from spanbatch.log_processor import LOGS

pytestmark = pytest.mark.timeout(10)  # a reporter waiting for its own thread hangs

INTERVAL_SECONDS = 0.05
TOLD = re.compile(r"shut down — dropped (\d+) log records?")


class NestedOnce:
    """``time`` for ``_drops``: its ``nth`` read of the clock runs ``nested`` first, once."""

    def __init__(self, nth: int, nested: Callable[[], None]) -> None:
        self._reads = 0
        self._nth = nth
        self._nested = nested

    def monotonic(self) -> float:
        self._reads += 1
        if self._reads == self._nth:
            self._nested()
        return time.monotonic()


@pytest.fixture
def told() -> Iterator[list[str]]:
    """spanbatch's warnings, as logged."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    spanbatch_logger = logging.getLogger("spanbatch")
    keep = Keep(logging.WARNING)
    spanbatch_logger.addHandler(keep)
    try:
        yield lines
    finally:
        spanbatch_logger.removeHandler(keep)


def test_a_report_nested_in_another_leaves_its_drops_to_the_next_line(
    monkeypatch: pytest.MonkeyPatch, told: list[str]
) -> None:
    counts = {"shutdown": 3}
    reporter = DropReporter("", LOGS, interval_seconds=INTERVAL_SECONDS)
    time.sleep(INTERVAL_SECONDS * 2)  # the interval has passed: the first report tells

    def two_more_and_report() -> None:
        counts["shutdown"] += 2
        reporter.report(lambda: dict(counts))

    # The second read stamps the report's time, after its counts are booked: the nested report would still find the
    # interval passed.
    monkeypatch.setattr(_drops, "time", NestedOnce(2, two_more_and_report))
    reporter.report(lambda: dict(counts))
    assert [line.split(" in the last")[0] for line in told] == ["shut down — dropped 3 log records"]
    monkeypatch.setattr(_drops, "time", time)
    reporter.report(lambda: dict(counts), now=True)
    assert [line.split(" in the last")[0] for line in told[1:]] == ["shut down — dropped 2 log records"]


@pytest.mark.parametrize("nth", [1, 2], ids=["before-the-booking", "after-the-booking"])
def test_an_echo_nested_in_a_report_is_never_told(monkeypatch: pytest.MonkeyPatch, told: list[str], nth: int) -> None:
    counts = {"shutdown": 3}
    reporter = DropReporter("", LOGS, interval_seconds=INTERVAL_SECONDS, echoes=dict)
    time.sleep(INTERVAL_SECONDS * 2)

    def one_of_spanbatchs_lines_refused() -> None:
        with reporter.echo(lambda: dict(counts)):
            counts["shutdown"] += 1

    monkeypatch.setattr(_drops, "time", NestedOnce(nth, one_of_spanbatchs_lines_refused))
    reporter.report(lambda: dict(counts))
    monkeypatch.setattr(_drops, "time", time)
    reporter.report(lambda: dict(counts), now=True)
    assert counts == {"shutdown": 4}
    # Landing before the booking, the echo holds back one of the three to the next line (as an echo from another
    # thread would): told in all, the three, never four.
    assert sum(int(count) for count in TOLD.findall("\n".join(told))) == 3
