"""Exporters that record, count, fail, raise or hang, for tests to hand to a processor."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, get_value
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch._core import SpanEncoder, SpanRequest


class RecordingExporter(SpanExporter):
    """Keeps every batch; ``result`` may be a value or a callable of the batch; ``delay`` seconds per export."""

    def __init__(self, result: Any = SpanExportResult.SUCCESS, delay: float = 0.0) -> None:
        self.batches: list[list[ReadableSpan]] = []
        self.suppressed: list[bool] = []
        self.shutdown_calls: list[dict[str, Any]] = []
        self.result = result
        self.delay = delay
        self.exported = threading.Condition()

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        if self.delay:
            time.sleep(self.delay)
        with self.exported:
            self.batches.append(list(spans))
            self.suppressed.append(bool(get_value(_SUPPRESS_INSTRUMENTATION_KEY)))
            self.exported.notify_all()
        return self.result(spans) if callable(self.result) else self.result

    def shutdown(self, timeout_millis: float = 30000) -> None:
        self.shutdown_calls.append({"timeout_millis": timeout_millis})

    @property
    def spans(self) -> list[ReadableSpan]:
        return [s for batch in self.batches for s in batch]

    def names(self) -> list[str]:
        return [s.name for s in self.spans]

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """True once ``count`` spans were exported; False if ``timeout`` seconds pass first."""
        with self.exported:
            return self.exported.wait_for(lambda: len(self.spans) >= count, timeout)


class RaisingExporter(RecordingExporter):
    """Records each batch, then raises."""

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        super().export(spans)
        raise RuntimeError("backend exploded")


class HangingExporter(RecordingExporter):
    """``export`` (and optionally ``shutdown``) block until ``release`` is set, 60 s at most."""

    def __init__(self, hang_shutdown: bool = False) -> None:
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Event()
        self.hang_shutdown = hang_shutdown

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        self.entered.set()
        self.release.wait(60)
        return super().export(spans)

    def shutdown(self, timeout_millis: float = 30000) -> None:
        super().shutdown(timeout_millis)
        if self.hang_shutdown:
            self.release.wait(60)


class ScriptedExporter(RecordingExporter):
    """Call *n* does what ``script[n]`` says, later calls succeed; only successful batches are recorded.

    Actions: ``ok``; ``fail`` (returns FAILURE); ``raise`` (RuntimeError); ``exit`` (SystemExit);
    ``none`` (returns None); ``junk`` (returns a string); ``block`` (waits for ``release``, at most
    60 s, then succeeds). ``results`` is the signal's result enum (``LogRecordExportResult`` for a log processor).
    """

    def __init__(self, *script: str, results: Any = SpanExportResult) -> None:
        super().__init__(results.SUCCESS)
        self.results = results
        self.script = list(script)
        self.calls = 0
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        action = self.script[self.calls] if self.calls < len(self.script) else "ok"
        self.calls += 1
        if action == "fail":
            return self.results.FAILURE
        if action == "raise":
            raise RuntimeError("exporter failure injected by the test")
        if action == "exit":
            raise SystemExit(3)
        if action == "none":
            return None
        if action == "junk":
            return "SUCCESS"
        if action == "block":
            self.release.wait(60)
        return super().export(spans)

    def shutdown(self) -> None:  # type: ignore[override]
        # The SDK's own signature, without a timeout, as most exporters have it.
        super().shutdown()


class CountingExporter(SpanExporter):
    """Only counts the spans it accepts (``count``), after ``delay`` seconds per batch; keeps none.

    ``results`` is the signal's result enum (``LogRecordExportResult`` to count log records)."""

    def __init__(self, delay: float = 0.0, results: Any = SpanExportResult) -> None:
        self.count = 0
        self.delay = delay
        self.success = results.SUCCESS

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        if self.delay:
            time.sleep(self.delay)
        self.count += len(spans)
        return self.success


class EncodingExporter(SpanExporter):
    """Its class declares a ``span_encoder``, so spanbatch hands it SpanRequests; records what it got."""

    def __init__(self) -> None:
        self.encoder = SpanEncoder()
        self.offered: object = self.encoder  # what ``span_encoder`` returns
        self.batches: list[Any] = []
        self.bodies: list[bytes] = []

    @property
    def span_encoder(self) -> object:
        return self.offered

    def export(self, spans: Any) -> SpanExportResult:
        self.batches.append(spans)
        self.bodies.append(spans.to_bytes() if isinstance(spans, SpanRequest) else self.encoder.encode(spans))
        return SpanExportResult.SUCCESS

    @property
    def exported(self) -> int:
        return sum(len(batch) for batch in self.batches)


class HangingEncodingExporter(EncodingExporter):
    """Its second export hangs until ``release`` (20 s at most); records what it got, as its parent does."""

    def __init__(self) -> None:
        super().__init__()
        self.exporting, self.release = threading.Event(), threading.Event()
        self.calls = 0

    @property
    def span_encoder(self) -> object:  # declared by the class whose ``export`` it serves
        return self.offered

    def export(self, spans: Any) -> SpanExportResult:
        self.calls += 1
        if self.calls > 1:
            self.exporting.set()
            self.release.wait(20)
        return super().export(spans)
