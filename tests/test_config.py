"""Settings: the stock constructor, the stock variables, our variables first, bad values handled."""

from __future__ import annotations

import inspect
import logging
from typing import Any, Callable

import pytest
import spanbatch
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor as Stock
from spanbatch import _config

from tests.helpers import RecordingExporter

VARIABLES = [
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "SPANBATCH_MAX_QUEUE_SIZE",
    "SPANBATCH_SCHEDULE_DELAY_MS",
    "SPANBATCH_MAX_EXPORT_BATCH_SIZE",
    "SPANBATCH_EXPORT_TIMEOUT_MS",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    _config._warned.clear()


def settings_of(**kwargs: object) -> spanbatch.BatchSettings:
    processor = spanbatch.BatchSpanProcessor(RecordingExporter(), **kwargs)  # type: ignore[arg-type]
    try:
        return processor.settings
    finally:
        processor.shutdown()


def test_constructor_matches_the_stock_signature_positionally() -> None:
    ours = inspect.signature(spanbatch.BatchSpanProcessor.__init__).parameters
    stock = inspect.signature(Stock.__init__).parameters
    assert list(stock) == list(ours)[: len(stock)]
    for name, parameter in stock.items():
        assert ours[name].kind == parameter.kind, name
        assert ours[name].default == parameter.default, name


def test_is_a_span_processor_with_the_exporter_exposed(shutdown_later: Callable[[Any], Any]) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, 16, 100, 8, 1000))
    assert isinstance(processor, SpanProcessor)
    assert processor.span_exporter is exporter
    assert processor.settings == spanbatch.BatchSettings(16, 100.0, 8, 1000.0)
    processor.shutdown()


def test_defaults_match_the_stock_processor() -> None:
    assert settings_of() == spanbatch.BatchSettings(2048, 5000.0, 512, 30000.0)


def test_otel_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "250")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10")
    monkeypatch.setenv("OTEL_BSP_EXPORT_TIMEOUT", "700")
    assert settings_of() == spanbatch.BatchSettings(100, 250.0, 10, 700.0)


def test_precedence_is_argument_then_spanbatch_then_otel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100")
    monkeypatch.setenv("SPANBATCH_MAX_QUEUE_SIZE", "200")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "111")
    monkeypatch.setenv("SPANBATCH_SCHEDULE_DELAY_MS", "222")
    assert settings_of().max_queue_size == 200
    assert settings_of().schedule_delay_millis == 222
    assert settings_of(max_queue_size=300, max_export_batch_size=30).max_queue_size == 300


@pytest.mark.parametrize("value", ["abc", "1.5", "-5", "0", "99999999999999", "0x10", "nan"])
def test_bad_variable_warns_once_naming_it_and_falls_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    monkeypatch.setenv("SPANBATCH_MAX_QUEUE_SIZE", value)
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "64")
    with caplog.at_level(logging.WARNING, logger="spanbatch"):
        assert settings_of(max_export_batch_size=8).max_queue_size == 64
        assert settings_of(max_export_batch_size=8).max_queue_size == 64
    warnings = [r.getMessage() for r in caplog.records if "SPANBATCH_MAX_QUEUE_SIZE" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert repr(value) in warnings[0]
    assert "OTEL_BSP_MAX_QUEUE_SIZE" in warnings[0]


@pytest.mark.parametrize("variable", VARIABLES)
@pytest.mark.parametrize("value", ["garbage", "-1", "0", "1e309", " ", "", "10000000000000000000000"])
def test_no_bad_value_in_any_variable_breaks_construction(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    settings = settings_of()
    assert 0 < settings.max_export_batch_size <= settings.max_queue_size <= _config.LARGEST_QUEUE_SIZE
    assert settings.schedule_delay_millis > 0
    assert settings.export_timeout_millis > 0


def test_empty_variable_counts_as_unset_without_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "")
    with caplog.at_level(logging.WARNING):
        assert settings_of().max_queue_size == 2048
    assert not caplog.records


def test_batch_larger_than_queue_from_variables_is_clamped_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100")
    with caplog.at_level(logging.WARNING):
        settings = settings_of()
    assert (settings.max_queue_size, settings.max_export_batch_size) == (100, 100)
    assert "larger than max_queue_size=100" in caplog.text


BAD_ARGUMENTS = [
    {"max_queue_size": 0},
    {"max_queue_size": -1},
    {"schedule_delay_millis": 0},
    {"schedule_delay_millis": -5},
    {"max_export_batch_size": 0},
    {"max_export_batch_size": -2},
    {"max_queue_size": 256, "max_export_batch_size": 512},
    {"max_queue_size": 100},
]


@pytest.mark.parametrize("kwargs", BAD_ARGUMENTS, ids=str)
def test_bad_arguments_raise_the_stock_value_error(kwargs: dict[str, int]) -> None:
    # No match=: the point is that both messages are the same, whatever they say.
    with pytest.raises(ValueError) as stock_error:  # noqa: PT011
        Stock(RecordingExporter(), **kwargs)
    with pytest.raises(ValueError) as our_error:  # noqa: PT011
        spanbatch.BatchSpanProcessor(RecordingExporter(), **kwargs)  # type: ignore[arg-type]
    assert str(our_error.value) == str(stock_error.value)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_queue_size": "10"}, TypeError),
        ({"max_export_batch_size": 1.5}, TypeError),
        ({"schedule_delay_millis": "soon"}, TypeError),
        ({"schedule_delay_millis": float("nan")}, ValueError),
        ({"export_timeout_millis": 0}, ValueError),
        ({"max_queue_size": _config.LARGEST_QUEUE_SIZE + 1}, ValueError),
    ],
    ids=str,
)
def test_wrong_argument_types_and_sizes_get_clear_errors(kwargs: dict[str, object], error: type) -> None:
    with pytest.raises(error, match=next(iter(kwargs))):
        spanbatch.BatchSpanProcessor(RecordingExporter(), **kwargs)  # type: ignore[arg-type]


def test_whole_floats_and_huge_delays_are_accepted() -> None:
    settings = settings_of(max_queue_size=64.0, max_export_batch_size=8, schedule_delay_millis=1e300)
    assert settings.max_queue_size == 64
    assert settings.schedule_delay_millis == _config.LONGEST_MILLIS
