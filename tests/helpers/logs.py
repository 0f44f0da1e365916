"""Log records for end-to-end tests: a logger provider, records emitted through it or through a real
``LoggingHandler``, GenAI-style bodies, and spanbatch's own OTLP log exporter for a receiver.

Imported on its own (``tests.helpers.logs``): it needs the OTLP exporter packages.
"""

from __future__ import annotations

import logging
import random
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import spanbatch
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import Logger, LoggerProvider, LoggingHandler, LogRecordProcessor
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.resources import Resource
from spanbatch.exporter import OTLPLogExporter
from spanbatch.exporter import grpc as spanbatch_grpc
from spanbatch.testing import OTLPReceiver

from tests.helpers.accounting import balanced

GENAI_EVENT = "gen_ai.client.inference.operation.details"
_WORDS = ("the", "model", "answer", "token", "prompt", "user", "context", "données", "system", "🌍")


def spanbatch_log_exporter(rx: OTLPReceiver, **kwargs: Any) -> LogRecordExporter:
    """spanbatch's (Rust-encoded) OTLP log exporter for ``rx``'s protocol; ``kwargs`` go to its constructor."""
    if rx.protocol == "http":
        return OTLPLogExporter(endpoint=rx.log_endpoint, **kwargs)
    return spanbatch_grpc.OTLPLogExporter(endpoint=rx.log_endpoint, insecure=True, **kwargs)


def logger_provider_with(*processors: LogRecordProcessor, service: str = "tests") -> LoggerProvider:
    """A logger provider feeding ``processors``; no atexit hook, so it cannot outlive the test."""
    provider = LoggerProvider(resource=Resource.create({"service.name": service}), shutdown_on_exit=False)
    for processor in processors:
        provider.add_log_record_processor(processor)
    return provider


def genai_text(key: str, size: int, seed: int = 0) -> str:
    """A body of about ``size`` characters (a prompt or a completion) that starts with ``key``, unique by it."""
    rng = random.Random(f"{key}/{seed}")
    words = [key]
    length = len(key)
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)


def emit_events(provider: LoggerProvider, count: int, name: str = "log", size: int = 0) -> list[str]:
    """Emits ``count`` GenAI-style event records (event name, attributes) through the SDK logger; returns
    their bodies, ``name-0``, ``name-1``, … (padded to about ``size`` characters when ``size`` is given)."""
    logger = provider.get_logger("tests.genai")
    bodies = [genai_text(f"{name}-{i}", size) if size else f"{name}-{i}" for i in range(count)]
    for i, body in enumerate(bodies):
        logger.emit(
            LogRecord(
                body=body,
                event_name=GENAI_EVENT,
                severity_number=SeverityNumber.INFO,
                attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.usage.output_tokens": i},
            )
        )
    return bodies


def bridged_logger(provider: LoggerProvider, name: str) -> tuple[logging.Logger, LoggingHandler]:
    """A stdlib logger whose records reach ``provider`` through a real ``LoggingHandler`` (and no further).

    The caller removes the handler when done (``logger.removeHandler(handler)``).
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    with warnings.catch_warnings():  # SDK 1.45 points to the contrib handler; the SDK's is what apps still use
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    return logger, handler


@dataclass(frozen=True)
class ChatEvents:
    """A spanbatch log processor batching to an exporter, and the logger of an OpenAI instrumentation feeding it."""

    processor: spanbatch.BatchLogRecordProcessor
    provider: LoggerProvider
    logger: Logger


def chat_events_to(exporter: LogRecordExporter, *, queue: int, batch: int, delay_millis: int) -> ChatEvents:
    """``ChatEvents`` to ``exporter`` with those queue and batch sizes and schedule delay (no atexit hook)."""
    processor = spanbatch.BatchLogRecordProcessor(
        exporter, max_queue_size=queue, max_export_batch_size=batch, schedule_delay_millis=delay_millis
    )
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(processor)
    return ChatEvents(processor, provider, provider.get_logger("opentelemetry.instrumentation.openai_v2"))


def assert_held_burst_delivered(
    events: ChatEvents, *, release: Callable[[], object], delivered: Callable[[], bool]
) -> None:
    """The end of a burst its backend held up: ``release()`` the backend, then a flush, none of the records dropped
    by the end of the burst, ``delivered()`` (all of them arrived), the invariant, and the provider shut down."""
    processor = events.processor
    stats = processor.stats()
    release()
    assert processor.force_flush(60_000), processor.stats()
    assert sum(stats.dropped.values()) == 0, stats
    assert delivered(), processor.stats()
    after = processor.stats()
    assert balanced(after), after
    events.provider.shutdown()
