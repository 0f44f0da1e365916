"""A Ctrl-C (or a SystemExit from a SIGTERM handler) landing in a drop report just after it booked its drops as told,
before it logs their line, must not leave that line "on its way" for good: a shutdown on another thread waits for
such lines (``Lane.tell_drops``) and would wait out its whole deadline for one that never comes."""

from __future__ import annotations

import threading

import pytest
from spanbatch._drops import DropReporter
from spanbatch.log_processor import LOGS


class InterruptedAsItLetsGo:
    """The reporter's lock, with a Ctrl-C landing just as it is let go after the drops are booked."""

    def __init__(self, reporter: DropReporter) -> None:
        self.reporter = reporter
        self.lock = threading.Lock()
        self.armed = True

    def __enter__(self) -> None:
        self.lock.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.lock.release()
        if self.armed and self.reporter._on_their_way.get():
            self.armed = False
            raise KeyboardInterrupt

    def get(self) -> InterruptedAsItLetsGo:
        return self


def test_a_line_booked_then_interrupted_is_not_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    reporter = DropReporter("", LOGS, interval_seconds=0)
    monkeypatch.setattr(reporter, "_locks", InterruptedAsItLetsGo(reporter))
    with pytest.raises(KeyboardInterrupt):
        reporter.report(lambda: {"queue_full": 3}, now=True)
    waiting: list[bool] = []
    other = threading.Thread(target=lambda: waiting.append(reporter.lines_on_their_way()))
    other.start()
    other.join(10)
    assert waiting == [False], "a shutdown on another thread would wait for a line that never comes"


def test_drops_whose_line_a_ctrl_c_cut_short_are_told_by_the_next_line(monkeypatch: pytest.MonkeyPatch) -> None:
    reporter = DropReporter("", LOGS, interval_seconds=0)
    lines: list[str] = []
    cut_short = [True]

    def log(new: dict[str, int], _elapsed: float, _last: bool) -> None:
        if cut_short.pop() if cut_short else False:
            raise KeyboardInterrupt  # landing in a user's logging filter or handler, Python code
        lines.append(f"dropped {new['queue_full']}")

    monkeypatch.setattr(reporter, "_log", log)
    with pytest.raises(KeyboardInterrupt):
        reporter.report(lambda: {"queue_full": 10}, now=True)
    reporter.report(lambda: {"queue_full": 16}, now=True)
    assert lines == ["dropped 16"]
