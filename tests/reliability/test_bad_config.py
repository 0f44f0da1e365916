"""Every batch variable with garbage, negative, zero, huge and empty values: a warning or the stock
ValueError, never any other exception, and the processor that results still works."""

from __future__ import annotations

import logging
import time

import pytest
from spanbatch import BatchSpanProcessor, _config, _setting
from spanbatch._config import LARGEST_QUEUE_SIZE

from tests.helpers import ScriptedExporter, end_spans, provider_with

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each bad (variable, value) is reported once per process; every test here expects its own report.
    monkeypatch.setattr(_setting, "_warned", set())


SIZE_VARIABLES = (
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "SPANBATCH_MAX_QUEUE_SIZE",
    "SPANBATCH_MAX_EXPORT_BATCH_SIZE",
)
TIME_VARIABLES = (
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "SPANBATCH_SCHEDULE_DELAY_MS",
    "SPANBATCH_EXPORT_TIMEOUT_MS",
)
VARIABLES = SIZE_VARIABLES + TIME_VARIABLES

NOT_AN_INTEGER = ("abc", "1e3", "12ms", "0x10", "1.5", "nan", "inf", "-inf", "\U0001f4a5", "--5", "5 5", "1,000")
NOT_POSITIVE = ("0", "-0", "-1", "-2147483648")
HUGE = ("99999999999999999999999", str(2**63), "1" + "0" * 400)
BLANK = ("", "   ", "\t\n", "\u00a0")
ODD_BUT_INTEGERS = (" 7 ", "+5", "1_000", "\u0661\u0662")  # int() accepts these, as the stock processor does
STOCK_MESSAGES = {
    "max_queue_size must be a positive integer.",
    "schedule_delay_millis must be positive.",
    "max_export_batch_size must be a positive integer.",
    "max_export_batch_size must be less than or equal to max_queue_size.",
}


def build_and_use(caplog: pytest.LogCaptureFixture) -> BatchSpanProcessor | None:
    """Builds a processor from the environment and proves it works; None if it raised the stock ValueError."""
    exporter = ScriptedExporter()
    try:
        processor = BatchSpanProcessor(exporter)
    except ValueError as error:
        message = str(error)
    else:
        message = None
    if message is not None:
        assert message in STOCK_MESSAGES
        return None
    try:
        settings = processor.settings
        assert 0 < settings.max_export_batch_size <= settings.max_queue_size <= LARGEST_QUEUE_SIZE
        assert settings.schedule_delay_millis > 0
        assert settings.export_timeout_millis > 0
        provider = provider_with(processor)
        end_spans(provider, 3)
        assert processor.force_flush(5_000)
        started = time.monotonic()
        provider.shutdown()
        assert time.monotonic() - started < 2.0
    finally:
        processor.shutdown()
    assert processor.stats().exported == 3
    assert len(exporter.spans) == 3
    return processor


def warned_about(caplog: pytest.LogCaptureFixture, variable: str) -> bool:
    # An unparsable OTEL_BSP_* variable is reported as the stock processor reports it: an error.
    return any(r.levelno >= logging.WARNING and variable in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("variable", VARIABLES)
@pytest.mark.parametrize("value", NOT_AN_INTEGER + NOT_POSITIVE)
def test_unusable_value_warns_or_raises_the_stock_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    if build_and_use(caplog) is not None:
        assert warned_about(caplog, variable)


@pytest.mark.parametrize("variable", VARIABLES)
@pytest.mark.parametrize("value", HUGE)
def test_huge_value_is_refused_or_clamped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    processor = build_and_use(caplog)
    if processor is not None and variable in SIZE_VARIABLES:
        # Past sys.maxsize (the stock deque's limit): refused with a warning, never honoured.
        assert warned_about(caplog, variable)


@pytest.mark.parametrize("variable", VARIABLES)
@pytest.mark.parametrize("value", BLANK + ODD_BUT_INTEGERS)
def test_blank_or_odd_integer_value_is_harmless(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    build_and_use(caplog)


def test_huge_argument_is_clamped_not_an_overflow() -> None:
    processor = BatchSpanProcessor(ScriptedExporter(), schedule_delay_millis=10**400, export_timeout_millis=10**400)
    processor.shutdown(timeout_millis=1_000)
    assert processor.settings.schedule_delay_millis == _config.LONGEST_MILLIS
    assert processor.settings.export_timeout_millis == _config.LONGEST_MILLIS


def test_every_variable_garbage_at_once(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    for variable, value in zip(VARIABLES, NOT_AN_INTEGER + NOT_POSITIVE, strict=False):
        monkeypatch.setenv(variable, value)
    processor = build_and_use(caplog)
    assert processor is not None
    assert all(warned_about(caplog, variable) for variable in VARIABLES)
