"""Each provider shuts its own side of a pipeline down (the Pipeline docstring), as with the stock processors:
a log record emitted after the ``TracerProvider`` has shut down, before the ``LoggerProvider`` does (an app's
own "traces flushed" line, an exporter's error logged by the span side's shutdown through a ``LoggingHandler``,
an atexit hook between the providers' hooks) still reaches the log backends.

``install()`` gives the ``TracerProvider`` the pipeline's span side (``PipelineSpans``), whose shutdown shuts the
span lanes alone; ``pipeline.shutdown()`` still shuts both.
"""

from __future__ import annotations

import pytest
import spanbatch
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider
from spanbatch.testing import OTLPReceiver

pytestmark = pytest.mark.timeout(60)


def test_a_log_record_emitted_between_the_providers_shutdowns_is_exported(receiver: OTLPReceiver) -> None:
    tracer_provider, logger_provider = TracerProvider(), LoggerProvider()
    pipeline = spanbatch.install(
        tracer_provider,
        {"a": receiver.span_exporter(timeout=5)},
        logger_provider=logger_provider,
        log_exporters={"a": receiver.log_exporter(timeout=5)},
    )
    tracer_provider.get_tracer("t").start_span("s").end()
    tracer_provider.shutdown()
    logger_provider.get_logger("t").emit(LogRecord(body="traces flushed"))
    logger_provider.shutdown()
    assert pipeline.logs is not None
    assert pipeline.logs.stats().dropped["shutdown"] == 0
    assert receiver.log_bodies() == {"traces flushed": 1}
