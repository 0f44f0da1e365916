"""Reading or encoding a batch with the Rust ``SpanEncoder``, logging what it had to leave out."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Callable, TypeVar

from opentelemetry.sdk.trace import ReadableSpan

from spanbatch._core import SpanEncoder, SpanRequest

T = TypeVar("T")

logger = logging.getLogger("spanbatch.exporter")


def encode_batch(encoder: SpanEncoder, spans: Sequence[ReadableSpan]) -> bytes:
    """A serialized ``ExportTraceServiceRequest`` for ``spans``; one warning per batch for anything left out."""
    return counting_skips(encoder, encoder.encode, spans)


def read_batch(encoder: SpanEncoder, spans: Sequence[ReadableSpan]) -> SpanRequest:
    """``spans`` read into a request to serialize later; one warning per batch for anything left out."""
    return counting_skips(encoder, encoder.read, spans)


def counting_skips(
    encoder: SpanEncoder, encode: Callable[[Sequence[ReadableSpan]], T], spans: Sequence[ReadableSpan]
) -> T:
    """``encode(spans)``, with one warning for the values and spans it had to leave out."""
    values, unread = encoder.skipped_values, encoder.skipped_spans
    data = encode(spans)
    # The stock encoder logs each such key too; a count per batch keeps the log readable.
    if (skipped := encoder.skipped_values - values) > 0:
        logger.warning("Left out %d attribute value(s) of a type OTLP cannot carry.", skipped)
    if (skipped := encoder.skipped_spans - unread) > 0:
        logger.warning(
            "Left out %d span(s) that could not be read (last error: %s); the rest of the batch is exported.",
            skipped,
            encoder.last_skip_reason,
        )
    return data
