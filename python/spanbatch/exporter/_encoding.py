"""Reading or encoding a batch with the Rust ``SpanEncoder``, logging what it had to leave out.

A batch is either spans or a ``SpanRequest`` spanbatch's processor already read them into
while the batch filled (see ``BatchCore.next_requests``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Callable, TypeVar, Union

from opentelemetry.sdk.trace import ReadableSpan

from spanbatch._core import SpanEncoder, SpanRequest

T = TypeVar("T")

Batch = Union[Sequence[ReadableSpan], SpanRequest]

logger = logging.getLogger("spanbatch.exporter")


def encode_batch(encoder: SpanEncoder, batch: Batch) -> bytes:
    """A serialized ``ExportTraceServiceRequest`` for ``batch``; one warning per batch for anything left out."""
    if isinstance(batch, SpanRequest):
        return batch.to_bytes()
    return counting_skips(encoder, lambda: encoder.encode(batch))


def read_batch(encoder: SpanEncoder, batch: Batch) -> SpanRequest:
    """``batch`` read into a request to serialize later; one warning per batch for anything left out."""
    if isinstance(batch, SpanRequest):
        return batch
    return counting_skips(encoder, lambda: encoder.read(batch))


def counting_skips(encoder: SpanEncoder, read: Callable[[], T]) -> T:
    """``read()``, with one warning for the values and spans the encoder had to leave out meanwhile."""
    values, unread = encoder.skipped_values, encoder.skipped_spans
    data = read()
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
