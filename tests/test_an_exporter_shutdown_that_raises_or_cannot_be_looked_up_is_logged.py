"""An exporter whose ``shutdown`` cannot even be looked up (a duck-typed exporter with only ``export``, a
``shutdown`` property that raises), or raises what is not an ``Exception`` (``SystemExit``, ``KeyboardInterrupt``
from its own code), is told of as one that raises an ``Exception`` from its ``shutdown``: logged, never an
exception escaping a spanbatch thread (where a thread's traceback, cut short if the interpreter exits first, or
nothing at all for ``SystemExit``, was all a user saw).

The stock processor raises the ``AttributeError`` from ``processor.shutdown()``; spanbatch calls the exporter's
``shutdown`` on a thread of its own (so that a hanging one keeps the deadline) and logs what it raises. Its
lookup ran outside that guard, so the helper thread died with the traceback (``threading.excepthook``: a
``PytestUnhandledThreadExceptionWarning`` in a user's test suite) and, on the path that calls it on the exiting
thread, the exception skipped the rest of the shutdown.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.helpers import balanced, end_spans


class OnlyExport:
    """A duck-typed exporter: ``export`` and nothing else."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


class ShutdownPropertyRaises(OnlyExport):
    @property
    def shutdown(self) -> Callable[[], None]:
        raise RuntimeError("no shutdown here")


class ShutdownExits(OnlyExport):
    def shutdown(self) -> None:
        raise SystemExit(2)


class ShutdownInterrupts(OnlyExport):
    def shutdown(self) -> None:
        raise KeyboardInterrupt


@pytest.mark.parametrize(
    "exporter_class",
    [
        OnlyExport,
        ShutdownPropertyRaises,
        ShutdownExits,
        ShutdownInterrupts,
    ],
)
def test_the_failure_is_logged_and_no_thread_dies(
    exporter_class: type[OnlyExport], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    died: list[BaseException | None] = []

    def record(args: Any) -> None:
        died.append(args.exc_value)

    monkeypatch.setattr(threading, "excepthook", record)
    exporter = exporter_class()
    processor = spanbatch.BatchSpanProcessor(exporter)  # type: ignore[arg-type]
    end_spans(processor, 3)
    with caplog.at_level(logging.ERROR, logger="spanbatch"):
        assert processor.shutdown() is None

    assert died == []
    assert exporter.exported == 3
    stats = processor.stats()
    assert (stats.exported, stats.queued, stats.in_flight) == (3, 0, 0)
    assert balanced(stats)
    told = f"Exception while shutting down {exporter_class.__name__}."
    [record] = [r for r in caplog.records if r.getMessage() == told]
    assert record.name == "spanbatch"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], (AttributeError, RuntimeError, SystemExit, KeyboardInterrupt))
