"""Reading or encoding a batch with the Rust ``SpanEncoder`` or ``LogEncoder``, logging and counting what it
had to leave out.

A batch is either spans (log records) or a ``SpanRequest`` (``LogRequest``) spanbatch's processor
already read them into while the batch filled (see ``BatchCore.next_requests``); such a request
carries its own count of items left out, which the processor settles with it.

Below both the export loop and ``spanbatch.exporter``, which share it: the loop opens
``spans_left_out``, ``items_spilled`` and ``requests_read`` around its exports and the exporters fill them, so neither
imports the other.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Generic, TypeVar, overload

from opentelemetry.sdk.trace import ReadableSpan

from spanbatch._core import LogEncoder, LogRequest, SpanEncoder, SpanRequest

if TYPE_CHECKING:
    # Not imported at run time: span-only users would pay for the SDK's logs package on ``import spanbatch``.
    from opentelemetry.sdk._logs import ReadableLogRecord

    LogBatch = Sequence[ReadableLogRecord] | LogRequest

T = TypeVar("T")

Batch = Sequence[ReadableSpan] | SpanRequest

logger = logging.getLogger("spanbatch.exporter")


class _OnThisThread(Generic[T]):
    """A value the export loop opens on its thread around its exports, for the exporters below to fill."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextmanager
    def open(self, value: T) -> Iterator[T]:
        outer = getattr(self._local, "value", None)
        self._local.value = value
        try:
            yield value
        finally:
            self._local.value = outer

    def current(self) -> T | None:
        return getattr(self._local, "value", None)


_left_out: _OnThisThread[dict[int, int]] = _OnThisThread()
_spilled: _OnThisThread[dict[int, int]] = _OnThisThread()
_read: _OnThisThread[dict[int, list[SpanRequest | LogRequest]]] = _OnThisThread()


def spans_left_out() -> AbstractContextManager[dict[int, int]]:
    """While open, the spans the encoder leaves out of lists read on this thread, by ``id`` of the list.

    spanbatch's export loop opens it around its exports, so that a span the exporter could not
    encode counts as dropped (``unencodable``), not as exported; a span left out of such a list
    for its size counts there too (only a ``SpanRequest`` tells the processor ``too_large``).
    A list read more than once (a retry) counts its most.
    """
    return _left_out.open({})


def items_spilled() -> AbstractContextManager[dict[int, int]]:
    """While open, the items an exporter stored on disk (its spill) while exporting batches on this thread,
    by ``id`` of the batch: spanbatch's export loop counts them as ``spilled``, not exported or dropped."""
    return _spilled.open({})


def requests_read() -> AbstractContextManager[dict[int, list[SpanRequest | LogRequest]]]:
    """While open, the requests batches were read into on this thread, by ``id`` of the batch: spanbatch's
    export loop counts the items of the parts a request had accepted when its export failed as exported."""
    return _read.open({})


def accepted_items(request: SpanRequest | LogRequest) -> int:
    """The items of the parts of ``request`` the backend accepted (or its exporter spilled) so far."""
    pending = set(request.pending_parts())
    return sum(request.part_items(index) for index in range(request.parts) if index not in pending)


def note_spilled(batch: object, items: int) -> None:
    """``items`` of ``batch`` were stored on disk (noted only while ``items_spilled`` is open on this thread)."""
    counts = _spilled.current()
    if counts is not None and items > 0:
        counts[id(batch)] = counts.get(id(batch), 0) + items


@overload
def encode_batch(encoder: SpanEncoder, batch: Batch) -> bytes: ...
@overload
def encode_batch(encoder: LogEncoder, batch: LogBatch) -> bytes: ...
def encode_batch(encoder: SpanEncoder | LogEncoder, batch: Batch | LogBatch) -> bytes:
    """A serialized ``ExportTraceServiceRequest`` (``ExportLogsServiceRequest``) for ``batch``; one warning per
    batch for anything left out."""
    return read_batch(encoder, batch).to_bytes()  # type: ignore[arg-type]


@overload
def read_batch(encoder: SpanEncoder, batch: Batch) -> SpanRequest: ...
@overload
def read_batch(encoder: LogEncoder, batch: LogBatch) -> LogRequest: ...
def read_batch(encoder: SpanEncoder | LogEncoder, batch: Batch | LogBatch) -> SpanRequest | LogRequest:
    """``batch`` read into a request to serialize later; one warning per batch for anything left out."""
    if isinstance(batch, SpanRequest | LogRequest):
        return batch
    request = counting_skips(encoder, lambda: encoder.read(batch))
    counts = _left_out.current()
    if counts is not None and request.left_out:
        counts[id(batch)] = max(counts.get(id(batch), 0), request.left_out)
    requests = _read.current()
    if requests is not None:
        requests.setdefault(id(batch), []).append(request)
    return request


def _items_left_out(encoder: SpanEncoder | LogEncoder) -> tuple[int, int, str]:
    """The items ``encoder`` left out so far, unreadable and too large, and what they are."""
    if isinstance(encoder, LogEncoder):
        return encoder.skipped_records, encoder.too_large_records, "log record(s)"
    return encoder.skipped_spans, encoder.too_large_spans, "span(s)"


def counting_skips(encoder: SpanEncoder | LogEncoder, read: Callable[[], T]) -> T:
    """``read()``, with one warning for the values and items the encoder had to leave out meanwhile."""
    skips = SkipWarnings(encoder)
    data = read()
    skips.report()
    return data


class SkipWarnings:
    """One warning per kind for the values and items ``encoder`` left out since the last report, whichever
    thread read them (spanbatch's worker reads ahead on the threads that end spans, see ``read_ahead.rs``)."""

    def __init__(self, encoder: SpanEncoder | LogEncoder) -> None:
        self._encoder = encoder
        self._seen = self._counts()

    def _counts(self) -> tuple[int, int, int]:
        unread, too_large, _ = _items_left_out(self._encoder)
        return self._encoder.skipped_values, unread, too_large

    def report(self) -> None:
        encoder, (values, unread, too_large) = self._encoder, self._seen
        self._seen = values_now, unread_now, too_large_now = self._counts()
        noun = _items_left_out(encoder)[2]
        # The stock encoder logs each such key too; a count per batch keeps the log readable.
        if (skipped := values_now - values) > 0:
            logger.warning("Left out %d attribute value(s) of a type OTLP cannot carry.", skipped)
        if (skipped := unread_now - unread) > 0:
            logger.warning(
                "Left out %d %s that could not be read (last error: %s); the rest of the batch is exported.",
                skipped,
                noun,
                encoder.last_skip_reason,
            )
        if (skipped := too_large_now - too_large) > 0:
            logger.warning(
                "Left out %d %s over the %d-byte request limit (the largest: %d bytes); "
                "the rest of the batch is exported.",
                skipped,
                noun,
                encoder.max_request_bytes,
                encoder.last_too_large_bytes,
            )
