"""Each batch argument, over a grid of odd values, against the stock span and log processors of the SDK.

What the stock constructor refuses we refuse with the same exception type (its checks run in its order:
the four ``ValueError`` comparisons first, then the deque's ``TypeError``), and what it accepts we accept.
Known, documented leniency: a whole float ``max_queue_size`` (``64.0``), which the stock deque refuses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction

import numpy
import pytest
import spanbatch
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor as StockLogs
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace.export import BatchSpanProcessor as StockSpans
from spanbatch import _setting

from tests.helpers import RecordingExporter

VARIABLES = ("MAX_QUEUE_SIZE", "SCHEDULE_DELAY", "MAX_EXPORT_BATCH_SIZE", "EXPORT_TIMEOUT")


class OnlyIndex:
    """An integer-like object that cannot be compared with 0, as the stock checks do."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"OnlyIndex({self.value})"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for prefix in ("OTEL_BSP_", "OTEL_BLRP_", "SPANBATCH_", "SPANBATCH_LOGS_"):
        for variable in VARIABLES:
            monkeypatch.delenv(prefix + variable, raising=False)
    _setting._warned.clear()


PAIRS: list[tuple[type, type, Callable[[], object]]] = [
    (StockSpans, spanbatch.BatchSpanProcessor, RecordingExporter),
    (StockLogs, spanbatch.BatchLogRecordProcessor, InMemoryLogRecordExporter),
]


def outcome(cls: type, exporter: object, kwargs: dict[str, object]) -> type | None:
    """The exception type the constructor raised, or None when it built a processor (shut down at once)."""
    try:
        processor = cls(exporter, **kwargs)
    except Exception as error:  # the type is what is compared
        return type(error)
    processor.shutdown()
    return None


GRID: list[dict[str, object]] = [
    # max_queue_size: the stock comparisons raise ValueError before its deque refuses a non-integer.
    {"max_queue_size": 1.5},
    {"max_queue_size": 0.5},
    {"max_queue_size": 0.5, "max_export_batch_size": 1},
    {"max_queue_size": -math.inf},
    {"max_queue_size": Decimal(5)},
    {"max_queue_size": Fraction(3, 2)},
    {"max_queue_size": 1e300, "max_export_batch_size": 1},
    {"max_queue_size": OnlyIndex(5)},
    {"max_queue_size": OnlyIndex(5), "max_export_batch_size": 1},
    {"max_queue_size": OnlyIndex(0)},
    # max_export_batch_size: only compared by the stock constructor, so any real number passes.
    {"max_export_batch_size": Decimal(5)},
    {"max_export_batch_size": Decimal("1.5")},
    {"max_export_batch_size": Fraction(5)},
    {"max_export_batch_size": Fraction(3, 2), "max_queue_size": 10},
    {"max_export_batch_size": Decimal(20), "max_queue_size": 10},
    {"max_export_batch_size": OnlyIndex(5)},
    {"max_export_batch_size": OnlyIndex(0)},
    # schedule_delay_millis: comparisons first, then the stock BatchProcessor divides it by 1e3.
    {"schedule_delay_millis": OnlyIndex(5)},
    {"schedule_delay_millis": Fraction(3, 2)},
    {"schedule_delay_millis": Decimal(5)},
    # numpy's scalars, as settings computed with numpy are: its bool and 0-d arrays are no numbers.Real, but the stock
    # BatchProcessor divides the delay by 1e3 all the same.
    {"schedule_delay_millis": numpy.True_},
    {"schedule_delay_millis": numpy.array(5)},
    {"schedule_delay_millis": numpy.array(2.5)},
    {"schedule_delay_millis": numpy.int64(5)},
    {"schedule_delay_millis": numpy.float64(2.5)},
    {"schedule_delay_millis": numpy.False_},
    {"max_export_batch_size": numpy.True_},
    {"max_export_batch_size": numpy.int64(5)},
    {"max_export_batch_size": numpy.float64(2.5)},
    {"max_queue_size": numpy.False_},
    {"export_timeout_millis": numpy.True_},
    {"export_timeout_millis": numpy.int64(5)},
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kwargs", GRID, ids=repr)
@pytest.mark.parametrize(("stock", "ours", "exporter"), PAIRS, ids=["spans", "logs"])
def test_an_odd_argument_has_the_stock_outcome(
    stock: type, ours: type, exporter: Callable[[], object], kwargs: dict[str, object]
) -> None:
    assert outcome(ours, exporter(), kwargs) is outcome(stock, exporter(), kwargs)


HUGE = Fraction(10**400)


@pytest.mark.parametrize(
    "kwargs",
    [{"export_timeout_millis": HUGE}, {"export_timeout_millis": -HUGE}, {"schedule_delay_millis": HUGE}],
    ids=["export_timeout_millis", "negative export_timeout_millis", "schedule_delay_millis"],
)
@pytest.mark.parametrize(("stock", "ours", "exporter"), PAIRS, ids=["spans", "logs"])
def test_a_fraction_past_a_float_has_the_stock_outcome(
    stock: type, ours: type, exporter: Callable[[], object], kwargs: dict[str, object]
) -> None:
    # Stock never reads its timeout (any value builds a processor) and divides the delay (OverflowError).
    assert outcome(ours, exporter(), kwargs) is outcome(stock, exporter(), kwargs)


@pytest.mark.parametrize(
    ("value", "expected"), [(Decimal(5), 5), (Fraction(5), 5), (Decimal("1.5"), 1), (Fraction(7, 2), 3)], ids=repr
)
def test_a_batch_size_given_as_another_real_number_is_used_whole(value: object, expected: int) -> None:
    processor = spanbatch.BatchSpanProcessor(RecordingExporter(), max_export_batch_size=value)  # type: ignore[arg-type]
    try:
        assert processor.settings.max_export_batch_size == expected
    finally:
        processor.shutdown()


@pytest.mark.parametrize(
    ("value", "millis"), [(numpy.True_, 1.0), (numpy.array(5), 5.0), (numpy.array(2.5), 2.5)], ids=repr
)
@pytest.mark.parametrize(("ours", "exporter"), [pair[1:] for pair in PAIRS], ids=["spans", "logs"])
def test_a_schedule_delay_given_as_a_numpy_value_is_that_many_milliseconds(
    ours: type, exporter: Callable[[], object], value: object, millis: float
) -> None:
    # As the stock worker waits value / 1e3 seconds (np.True_: 1 ms, as True).
    processor = ours(exporter(), schedule_delay_millis=value)
    try:
        assert processor.settings.schedule_delay_millis == millis
    finally:
        processor.shutdown()
