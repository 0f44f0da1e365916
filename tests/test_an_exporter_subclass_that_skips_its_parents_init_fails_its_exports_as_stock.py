"""A subclass of spanbatch's OTLP exporters whose ``__init__`` never calls its parent's: every export raises, as
it does for the same subclass of the stock exporter behind the stock processor, and each batch is counted as
failed, logged with the stock line, and flushed in time.

Before: reading the encoder the class declares raised ``KeyError`` on the worker thread before its first batch,
which ended the thread; every span stayed queued for ever (a flush waited out its timeout, shutdown left them
``queued``) and ``stats()`` raised ``AttributeError`` from the spill counters.
"""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

import logging
from typing import Any

from spanbatch import BatchLogRecordProcessor, BatchSpanProcessor
from spanbatch.exporter import OTLPLogExporter, OTLPSpanExporter
from spanbatch.exporter import grpc as spanbatch_grpc

from tests.helpers import LONG, balanced, end_spans
from tests.helpers.logs import emit_events, logger_provider_with


def skipping_init(base: type[Any]) -> type[Any]:
    """``base`` with an ``__init__`` of the user's that sets its own attribute and never calls ``base``'s."""

    def __init__(self: Any) -> None:
        self.label = "mine"

    return type(f"Lazy{base.__name__}", (base,), {"__init__": __init__})


SPAN_EXPORTERS = [OTLPSpanExporter, spanbatch_grpc.OTLPSpanExporter]
LOG_EXPORTERS = [OTLPLogExporter, spanbatch_grpc.OTLPLogExporter]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "base", SPAN_EXPORTERS + LOG_EXPORTERS, ids=["http-spans", "grpc-spans", "http-logs", "grpc-logs"]
)
def test_every_batch_fails_logged_and_counted(base: type[Any], caplog: pytest.LogCaptureFixture) -> None:
    exporter = skipping_init(base)()
    spans = base in SPAN_EXPORTERS
    processor: Any = (BatchSpanProcessor if spans else BatchLogRecordProcessor)(exporter, schedule_delay_millis=LONG)
    try:
        with caplog.at_level(logging.ERROR):
            if spans:
                end_spans(processor, 5)
            else:
                emit_events(logger_provider_with(processor), 5)
            assert processor.force_flush(5_000)
        stats = processor.stats()
        assert balanced(stats)
        assert (stats.queued, stats.in_flight, stats.exported, stats.dropped["export_failed"]) == (0, 0, 0, 5)
        raised = [r for r in caplog.records if r.getMessage().startswith("Exception while exporting")]
        assert raised
        assert raised[0].exc_info is not None
        assert raised[0].exc_info[0] is AttributeError
    finally:
        processor.shutdown()
    assert processor.stats().dropped["export_failed"] == 5
