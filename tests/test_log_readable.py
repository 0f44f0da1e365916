"""What ``on_emit`` queues: exactly what the stock log processor queues for the same record, side by side
under one real LoggerProvider, whichever path (native or stock's own steps) the record's class takes."""

from __future__ import annotations

import copy
import copyreg
import dataclasses
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import spanbatch
from opentelemetry import trace
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context, create_key, set_value
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor as StockBatchLogRecordProcessor
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from spanbatch import _log_readable

from tests.helpers import LONG

pytestmark = [
    pytest.mark.timeout(60),
    # Before, stock queues the API record itself: tests/test_oldest_supported_sdk.py checks that.
    pytest.mark.skipif(not _log_readable._STOCK_COPIES, reason="the stock processor copies records from SDK 1.44"),
]
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture
POLICIES = ["oldest", "block"]  # under block, on_emit stays a Python method that calls the same push


class Plain(LogRecord):
    """A user's record class that adds attributes and a method, no copy hooks: the native path."""

    def tag(self) -> str:
        return f"plain {self.body}"


class CopiesItself(LogRecord):
    copies = 0

    def __copy__(self) -> CopiesItself:
        type(self).copies += 1
        twin = CopiesItself.__new__(CopiesItself)
        twin.__dict__.update(self.__dict__, copied_by="__copy__")
        return twin


class Reduces(LogRecord):
    def __reduce_ex__(self, protocol: Any) -> Any:
        state = dict(self.__dict__, reduced=True)
        return (copyreg.__newobj__, (Reduces,), state)


class KeepsState(LogRecord):
    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__, through="getstate")

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, restored=True)


class Slotted(LogRecord):
    __slots__ = ("extra",)


class ContextProperty(LogRecord):
    """``context`` through a property: a copy's new context goes where the property puts it."""

    @property
    def context(self) -> Context:  # type: ignore[override]
        return self.__dict__["_ctx"]  # type: ignore[no-any-return]

    @context.setter
    def context(self, value: Context) -> None:
        self.__dict__["_ctx"] = value


RECORD_CLASSES = [LogRecord, Plain, CopiesItself, Reduces, KeepsState, Slotted, ContextProperty]


class Originals(LogRecordProcessor):
    """Keeps what the SDK handed its processors, to check nothing changed it."""

    def __init__(self) -> None:
        self.records: list[ReadWriteLogRecord] = []

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self.records.append(log_record)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@dataclasses.dataclass
class SideBySide:
    provider: LoggerProvider
    stock: InMemoryLogRecordExporter
    ours: InMemoryLogRecordExporter
    originals: Originals

    def emit(self, record: LogRecord) -> None:
        self.provider.get_logger("tests.readable", "1.2").emit(record)

    def queued(self) -> tuple[list[ReadableLogRecord], list[ReadableLogRecord]]:
        assert self.provider.force_flush(5000)
        return list(self.stock.get_finished_logs()), list(self.ours.get_finished_logs())


@pytest.fixture(params=POLICIES)
def side_by_side(request: pytest.FixtureRequest, shutdown_later: Later) -> Iterator[SideBySide]:
    stock, ours, originals = InMemoryLogRecordExporter(), InMemoryLogRecordExporter(), Originals()
    provider = LoggerProvider(resource=Resource.create({"service.name": "readable"}), shutdown_on_exit=False)
    provider.add_log_record_processor(StockBatchLogRecordProcessor(stock, schedule_delay_millis=LONG))
    ours_processor = spanbatch.BatchLogRecordProcessor(ours, schedule_delay_millis=LONG, drop_policy=request.param)
    provider.add_log_record_processor(shutdown_later(ours_processor))
    provider.add_log_record_processor(originals)
    yield SideBySide(provider, stock, ours, originals)
    provider.shutdown()


def a_context() -> Context:
    """A context with a span and a large value: what the stock processor lets go of."""
    span = NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1)))
    return set_value(create_key("payload"), "x" * 10_000, trace.set_span_in_context(span))


def a_record(cls: type[LogRecord], context: Context, body: str) -> LogRecord:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        record = cls(
            timestamp=1_000,
            context=context,
            severity_text="INFO",
            severity_number=SeverityNumber.INFO,
            body={"message": body, "tokens": [1, 2, 3]},
            attributes={"gen_ai.system": "openai", "n": 3},
            event_name="gen_ai.choice",
        )
    if isinstance(record, Slotted):
        record.extra = ["slot", body]
    return record


def state(record: LogRecord) -> dict[str, Any]:
    """Every attribute of an API record: its ``__dict__`` and its slots."""
    slots = {name: getattr(record, name) for klass in type(record).__mro__ for name in vars(klass).get("__slots__", ())}
    return {**getattr(record, "__dict__", {}), **slots}


@pytest.mark.parametrize("cls", RECORD_CLASSES, ids=lambda cls: cls.__name__)
def test_every_field_equals_what_stock_queues(side_by_side: SideBySide, cls: type[LogRecord]) -> None:
    """Same class, same fields, every time: each queued record a new object, the original untouched."""
    context = a_context()
    for n in range(3):  # the class's verdict is cached after the first
        side_by_side.emit(a_record(cls, context, f"event {n}"))
    stock, ours = side_by_side.queued()
    assert len(stock) == len(ours) == len(side_by_side.originals.records) == 3
    for theirs, mine, original in zip(stock, ours, side_by_side.originals.records, strict=True):
        assert type(mine) is type(theirs) is ReadableLogRecord
        assert vars(mine).keys() == vars(theirs).keys()
        for field in ("resource", "instrumentation_scope", "limits"):
            assert getattr(mine, field) is getattr(theirs, field) is getattr(original, field)
        assert type(mine.log_record) is type(theirs.log_record) is cls
        assert state(mine.log_record) == state(theirs.log_record)
        assert list(state(mine.log_record)) == list(state(theirs.log_record))  # in the same order
        assert mine.log_record.context == Context()
        assert type(mine.log_record.context) is Context
        assert mine.log_record is not original.log_record
        assert mine.log_record is not theirs.log_record
        assert original.log_record.context is context
        assert mine.log_record.body is original.log_record.body  # a shallow copy
        assert mine.to_json() == theirs.to_json()


def test_a_record_class_with_its_own_copy_is_copied_by_it(side_by_side: SideBySide) -> None:
    CopiesItself.copies = 0
    for n in range(2):
        side_by_side.emit(a_record(CopiesItself, a_context(), f"copy {n}"))
    _, ours = side_by_side.queued()
    assert CopiesItself.copies == 4  # twice for each processor
    assert all(record.log_record.copied_by == "__copy__" for record in ours)  # type: ignore[attr-defined]


def test_a_plain_record_is_copied_without_copy_copy(side_by_side: SideBySide, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's own record class takes the native path: ``copy.copy`` runs for the stock processor only."""
    calls: list[object] = []
    real_copy = copy.copy

    def counting_copy(value: Any) -> Any:
        calls.append(value)
        return real_copy(value)

    monkeypatch.setattr(copy, "copy", counting_copy)
    side_by_side.emit(a_record(LogRecord, a_context(), "plain"))
    stock, ours = side_by_side.queued()
    assert len(calls) == 1  # the stock processor's
    assert stock[0].log_record.body == ours[0].log_record.body


def test_a_readable_record_class_with_post_init_is_built_by_its_constructor(
    shutdown_later: Later, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[Any] = []

    @dataclasses.dataclass(frozen=True)
    class Checked(ReadableLogRecord):
        def __post_init__(self) -> None:
            built.append(self)

    monkeypatch.setattr(_log_readable, "_READABLE", Checked)
    exporter = InMemoryLogRecordExporter()
    processor = shutdown_later(spanbatch.BatchLogRecordProcessor(exporter, schedule_delay_millis=LONG))
    record = ReadWriteLogRecord(a_record(Plain, a_context(), "checked"), Resource.create({}))
    processor.on_emit(record)
    assert processor.force_flush(5000)
    (queued,) = exporter.get_finished_logs()
    assert built == [queued]
    assert type(queued) is Checked
    assert queued.log_record is not record.log_record
    assert queued.log_record.context == Context()


def test_without_readable_log_record_the_record_is_queued_as_it_is(
    shutdown_later: Later, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What SDKs before 1.39 hand their processors (a LogData) is what they queue."""
    monkeypatch.setattr(_log_readable, "_READABLE", None)
    exporter = InMemoryLogRecordExporter()
    processor = shutdown_later(spanbatch.BatchLogRecordProcessor(exporter, schedule_delay_millis=LONG))
    record = ReadWriteLogRecord(a_record(LogRecord, a_context(), "as it is"), Resource.create({}))
    processor.on_emit(record)
    assert processor.force_flush(5000)
    assert exporter.get_finished_logs() == (record,)
