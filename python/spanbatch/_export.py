"""The worker's export loop: one exporter, batches from the Rust core, every outcome counted."""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Sequence

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from spanbatch._core import BatchCore
from spanbatch._drops import DropReporter

logger = logging.getLogger("spanbatch")

# (exporter type, result type) pairs already reported for not returning a SpanExportResult.
_odd_results: set[tuple[type, type]] = set()


def export_batch(exporter: SpanExporter, batch: Sequence[ReadableSpan]) -> bool:
    """Export one batch; True only for SpanExportResult.SUCCESS. Never raises."""
    try:
        result = exporter.export(batch)
    except BaseException:  # an exporter must not take the worker down with it
        logger.exception("Exception while exporting a batch of %d spans.", len(batch))
        return False
    if result is SpanExportResult.SUCCESS:
        return True
    kind = (type(exporter), type(result))
    if result is not SpanExportResult.FAILURE and kind not in _odd_results:
        _odd_results.add(kind)
        logger.warning(
            "%s.export returned %r, not a SpanExportResult; counting its batches as failed.",
            type(exporter).__name__,
            result,
        )
    return False


def run_worker(core: BatchCore, exporter: SpanExporter, drops: DropReporter) -> None:
    """Export batches until the core says stop. Holds no reference to the processor."""
    token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        while (batch := core.next_batch()) is not None:
            core.finish_batch(len(batch), export_batch(exporter, batch))
            drops.report(core.stats()[6])
    finally:
        detach(token)


def shutdown_exporter(exporter: SpanExporter, timeout_millis: float) -> bool:
    """Call ``exporter.shutdown`` on a helper thread; returns False if it outlives the timeout."""
    try:
        takes_timeout = "timeout_millis" in inspect.signature(exporter.shutdown).parameters
    except (TypeError, ValueError):
        takes_timeout = False

    def call() -> None:
        try:
            if takes_timeout:
                exporter.shutdown(timeout_millis=max(0.0, timeout_millis))  # type: ignore[call-arg]
            else:
                exporter.shutdown()
        except Exception:
            logger.exception("Exception while shutting down %s.", type(exporter).__name__)

    helper = threading.Thread(target=call, name="spanbatch-exporter-shutdown", daemon=True)
    helper.start()
    helper.join(max(0.0, timeout_millis) / 1000)
    if helper.is_alive():
        logger.warning("%s.shutdown did not return within %.0f ms.", type(exporter).__name__, timeout_millis)
        return False
    return True
