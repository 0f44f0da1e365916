"""A queue that fills while the export in flight hangs (a backend that does not answer: the commonest cause of a full
queue) is told while it hangs, as the stock processor tells it at once on the thread that ended the item, not once
the export returns: a user watching the log of a process that starts to lose spans or log records must learn of it
then. The counts stay exact: what the first line tells is not told again. The thread that tells it keeps no lane
alive."""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from spanbatch import _drop_teller

from tests.helpers.fork import collect_child, start_child

pytestmark = pytest.mark.timeout(60)

# Generous: stock tells it on the thread that ends the item, before the next one ends.
TOLD_WITHIN_SECONDS = 10.0


class HungExport:
    """The export waits until the test lets it go (``go``)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.go = threading.Event()

    def hang(self) -> None:
        self.entered.set()
        self.go.wait(30)


class HungSpanExporter(SpanExporter):
    def __init__(self, hung: HungExport) -> None:
        self.hung = hung

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.hung.hang()
        return SpanExportResult.SUCCESS


class HungLogExporter(LogRecordExporter):
    def __init__(self, hung: HungExport) -> None:
        self.hung = hung

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.hung.hang()
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


@dataclass
class Lane:
    """A processor of one signal behind a hung export, and how to end an item into it."""

    end_item: Callable[[], None]
    processor: Any
    shutdown: Callable[[], None]
    stock_line: str


def span_lane(processor_class: type, hung: HungExport) -> Lane:
    processor = processor_class(
        HungSpanExporter(hung), max_queue_size=4, max_export_batch_size=2, schedule_delay_millis=10
    )
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("tests")
    return Lane(lambda: tracer.start_span("s").end(), processor, provider.shutdown, "Queue full, dropping Span.")


def log_lane(processor_class: type, hung: HungExport) -> Lane:
    processor = processor_class(
        HungLogExporter(hung), max_queue_size=4, max_export_batch_size=2, schedule_delay_millis=10
    )
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(processor)
    logger = provider.get_logger("tests")
    return Lane(lambda: logger.emit(body="r"), processor, provider.shutdown, "Queue full, dropping Log.")


def told_counts(caplog: pytest.LogCaptureFixture) -> list[int]:
    """The counts spanbatch's ``queue full`` lines told."""
    lines = [r.getMessage() for r in caplog.records if r.name == "spanbatch" and "queue full" in r.getMessage()]
    return [int(line.split("dropped ")[1].split()[0]) for line in lines]


def stock_lines(caplog: pytest.LogCaptureFixture, line: str) -> int:
    return sum(r.getMessage() == line for r in caplog.records)


def told_while_it_hangs(lane: Lane, hung: HungExport, caplog: pytest.LogCaptureFixture) -> bool:
    """Fills the lane's queue behind its hung export; whether the stock line came while it hung."""
    lane.end_item()
    assert hung.entered.wait(10)
    for _ in range(20):
        lane.end_item()
    deadline = time.monotonic() + TOLD_WITHIN_SECONDS
    while time.monotonic() < deadline and not stock_lines(caplog, lane.stock_line):
        time.sleep(0.02)
    return not hung.go.is_set() and stock_lines(caplog, lane.stock_line) > 0


@pytest.mark.parametrize("lane_of", [span_lane, log_lane], ids=["spans", "log-records"])
@pytest.mark.parametrize(
    "processors",
    [
        pytest.param({span_lane: BatchSpanProcessor, log_lane: BatchLogRecordProcessor}, id="stock"),
        pytest.param(
            {span_lane: spanbatch.BatchSpanProcessor, log_lane: spanbatch.BatchLogRecordProcessor}, id="spanbatch"
        ),
    ],
)
def test_a_queue_that_fills_behind_a_hung_export_is_told_while_it_hangs(
    lane_of: Callable[[type, HungExport], Lane],
    processors: dict[Callable[[type, HungExport], Lane], type],
    caplog: pytest.LogCaptureFixture,
) -> None:
    hung = HungExport()
    lane = lane_of(processors[lane_of], hung)
    try:
        with caplog.at_level(logging.WARNING):
            assert told_while_it_hangs(lane, hung, caplog), "the full queue was not told while the export hung"
            if isinstance(lane.processor, spanbatch.BatchSpanProcessor | spanbatch.BatchLogRecordProcessor):
                assert told_counts(caplog), "spanbatch's own line with the count did not come with the stock line"
    finally:
        hung.go.set()
        lane.shutdown()
    if isinstance(lane.processor, spanbatch.BatchSpanProcessor | spanbatch.BatchLogRecordProcessor):
        # Every drop told once in all: the first line's, then the rest at shutdown.
        assert sum(told_counts(caplog)) == lane.processor.stats().dropped["queue_full"] >= 16


@pytest.mark.parametrize("lane_of", [span_lane, log_lane], ids=["spans", "log-records"])
def test_a_forked_childs_queue_that_fills_behind_its_hung_export_is_told_in_the_child(
    lane_of: Callable[[type, HungExport], Lane], caplog: pytest.LogCaptureFixture
) -> None:
    processor_class = spanbatch.BatchSpanProcessor if lane_of is span_lane else spanbatch.BatchLogRecordProcessor
    hung = HungExport()
    lane = lane_of(processor_class, hung)

    def child() -> dict[str, Any]:
        # The child's lane has a core, a worker and a teller of its own (the parent's teller is not in the child).
        with caplog.at_level(logging.WARNING):
            told = told_while_it_hangs(lane, hung, caplog)
            hung.go.set()
            lane.shutdown()
        return {"told": told, "counts": told_counts(caplog), "dropped": lane.processor.stats().dropped["queue_full"]}

    try:
        report = collect_child(*start_child(child))
    finally:
        hung.go.set()
        lane.shutdown()
    assert report.get("told"), report
    assert sum(report["counts"]) == report["dropped"] >= 16


def a_span_lane_told_while_it_hung(caplog: pytest.LogCaptureFixture) -> Lane:
    """A spanbatch span lane whose queue filled behind its hung export, told while it hung, then shut down."""
    hung = HungExport()
    lane = span_lane(spanbatch.BatchSpanProcessor, hung)
    try:
        with caplog.at_level(logging.WARNING):
            assert told_while_it_hangs(lane, hung, caplog), "the full queue was not told while the export hung"
    finally:
        hung.go.set()
        lane.shutdown()
    return lane


def collected(refs: Sequence[weakref.ref[Any]], seconds: float = 10.0) -> bool:
    """Whether every referent is collected within ``seconds`` (the teller may still be finishing its line)."""
    deadline = time.monotonic() + seconds
    while True:
        gc.collect()
        if all(ref() is None for ref in refs):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def test_a_processor_whose_full_queue_was_told_while_it_hung_is_collected_once_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lane = a_span_lane_told_while_it_hung(caplog)
    refs = [weakref.ref(lane.processor), weakref.ref(lane.processor.lanes[0].exporter)]
    del lane
    assert collected(refs), "the processor or its exporter outlived every reference to it"


def test_the_line_told_while_the_export_hangs_is_logged_with_the_signal_mask_of_the_thread_that_made_the_lane(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The teller blocks signals only while it waits (a process's signal must not land on it): a handler that starts a
    # thread or a process while it logs there hands on the mask it would hand on anywhere.
    masks: list[tuple[str, set[int]]] = []

    class MaskRecorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            masks.append((threading.current_thread().name, set(signal.pthread_sigmask(signal.SIG_BLOCK, []))))

    recorder = MaskRecorder()
    logging.getLogger("spanbatch").addHandler(recorder)
    try:
        a_span_lane_told_while_it_hung(caplog)
    finally:
        logging.getLogger("spanbatch").removeHandler(recorder)
    assert masks[0] == ("spanbatch-drop-teller", set(signal.pthread_sigmask(signal.SIG_BLOCK, [])))


def test_a_shutdown_returns_once_the_line_the_teller_is_logging_is_out(caplog: pytest.LogCaptureFixture) -> None:
    # The teller books the drops it tells, then logs them: a shutdown meanwhile has nothing new to tell. Returned before
    # that line is out, it would leave it to a daemon thread that the exit may stop first.
    logging_it, go_on = threading.Event(), threading.Event()

    class HeldOnTheTeller(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if threading.current_thread().name == "spanbatch-drop-teller":
                logging_it.set()
                go_on.wait(30)

    held = HeldOnTheTeller()
    stock_logger = logging.getLogger("opentelemetry.sdk._shared_internal")  # its line comes first
    stock_logger.addHandler(held)
    hung = HungExport()
    lane = span_lane(spanbatch.BatchSpanProcessor, hung)
    try:
        with caplog.at_level(logging.WARNING):
            lane.end_item()
            assert hung.entered.wait(10)
            for _ in range(20):
                lane.end_item()
            assert logging_it.wait(10), "the teller did not tell the full queue"
            hung.go.set()
            threading.Timer(0.2, go_on.set).start()
            lane.shutdown()
            told_by_then = told_counts(caplog)
    finally:
        go_on.set()
        hung.go.set()
        stock_logger.removeHandler(held)
        lane.shutdown()
    assert sum(told_by_then) == lane.processor.stats().dropped["queue_full"] >= 16, told_by_then


class RaisesWhenTold:
    """A lane the teller cannot tell: one watched before it is whole, say (its core not set yet)."""

    def tell_first_full(self) -> None:
        raise AttributeError("'Lane' object has no attribute 'core'")


def test_a_lane_that_raises_when_told_leaves_the_teller_telling_the_others(caplog: pytest.LogCaptureFixture) -> None:
    broken = RaisesWhenTold()
    _drop_teller.watch(broken)  # before the lane below: told first
    a_span_lane_told_while_it_hung(caplog)
    assert any(r.name == "spanbatch" and r.exc_info for r in caplog.records), "the lane's error was not logged"
    assert [t for t in threading.enumerate() if t.name == "spanbatch-drop-teller"]
