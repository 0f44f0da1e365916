"""Reading or encoding a batch with the Rust ``SpanEncoder``, logging and counting what it had to leave out.

A batch is either spans or a ``SpanRequest`` spanbatch's processor already read them into
while the batch filled (see ``BatchCore.next_requests``); such a request carries its own
count of spans left out, which the processor settles with it.

Below both the export loop and ``spanbatch.exporter``, which share it: the loop opens
``spans_left_out`` around its exports and the exporters fill it, so neither imports the other.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from opentelemetry.sdk.trace import ReadableSpan

from spanbatch._core import SpanEncoder, SpanRequest

T = TypeVar("T")

Batch = Sequence[ReadableSpan] | SpanRequest

logger = logging.getLogger("spanbatch.exporter")

_left_out = threading.local()


@contextmanager
def spans_left_out() -> Iterator[dict[int, int]]:
    """While open, the spans the encoder leaves out of lists read on this thread, by ``id`` of the list.

    spanbatch's export loop opens it around its exports, so that a span the exporter could not
    encode counts as dropped (``unencodable``), not as exported; a span left out of such a list
    for its size counts there too (only a ``SpanRequest`` tells the processor ``too_large``).
    A list read more than once (a retry) counts its most.
    """
    counts: dict[int, int] = {}
    outer = getattr(_left_out, "counts", None)
    _left_out.counts = counts
    try:
        yield counts
    finally:
        _left_out.counts = outer


def encode_batch(encoder: SpanEncoder, batch: Batch) -> bytes:
    """A serialized ``ExportTraceServiceRequest`` for ``batch``; one warning per batch for anything left out."""
    if isinstance(batch, SpanRequest):
        return batch.to_bytes()
    return read_batch(encoder, batch).to_bytes()


def read_batch(encoder: SpanEncoder, batch: Batch) -> SpanRequest:
    """``batch`` read into a request to serialize later; one warning per batch for anything left out."""
    if isinstance(batch, SpanRequest):
        return batch
    request = counting_skips(encoder, lambda: encoder.read(batch))
    counts: dict[int, int] | None = getattr(_left_out, "counts", None)
    if counts is not None and request.left_out:
        counts[id(batch)] = max(counts.get(id(batch), 0), request.left_out)
    return request


def counting_skips(encoder: SpanEncoder, read: Callable[[], T]) -> T:
    """``read()``, with one warning for the values and spans the encoder had to leave out meanwhile."""
    values, unread, too_large = encoder.skipped_values, encoder.skipped_spans, encoder.too_large_spans
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
    if (skipped := encoder.too_large_spans - too_large) > 0:
        logger.warning(
            "Left out %d span(s) over the %d-byte request limit (the largest: %d bytes); the rest of the batch "
            "is exported.",
            skipped,
            encoder.max_request_bytes,
            encoder.last_too_large_bytes,
        )
    return data
