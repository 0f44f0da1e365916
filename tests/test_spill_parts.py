"""The disk spill with requests cut to a byte limit, and with the log exporters (which share the span
exporters' constructors): each part that fails is spilled on its own, the parts the backend accepted are
neither spilled nor sent again, and the spill's tally counts each part's own items."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

from collections.abc import Callable
from pathlib import Path
from typing import Any

import spanbatch
from spanbatch.exporter import OTLPLogExporter, OTLPSpanExporter
from spanbatch.exporter import grpc as spanbatch_grpc
from spanbatch.testing import OTLPReceiver

from tests.helpers import balanced, provider_with, wait_until
from tests.helpers.otlp_logs import record

pytestmark = pytest.mark.timeout(90)

MIB = 1 << 20


def spill_files(root: Path) -> list[Path]:
    return sorted(root.glob("*/*.spill"))


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_part_that_fails_is_spilled_alone_and_the_accepted_one_is_not(
    protocol: str, tmp_path: Path, shutdown_later: Callable[[Any], Any]
) -> None:
    with OTLPReceiver(protocol) as rx:
        # Six 300 kB spans make two 1 MiB parts; the backend takes the first and refuses everything after.
        rx.set_behaviour("status", status=503, after=1)
        spill = {"timeout": 1, "spill_dir": tmp_path, "max_export_batch_bytes": MIB}
        if protocol == "http":
            exporter: Any = OTLPSpanExporter(endpoint=rx.endpoint, **spill)
        else:
            exporter = spanbatch_grpc.OTLPSpanExporter(endpoint=rx.endpoint, insecure=True, **spill)
        processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
        tracer = provider_with(processor).get_tracer("agent")
        for i in range(6):
            with tracer.start_as_current_span(f"llm-{i}") as span:
                span.set_attribute("gen_ai.prompt", "p" * 300_000)
        assert processor.force_flush(30_000)
        stats = processor.stats()
        assert (stats.exported, stats.spilled, stats.dropped_total) == (3, 3, 0)
        assert balanced(stats)
        assert len(spill_files(tmp_path)) == 1
        rx.set_behaviour("ok")
        assert rx.wait_for(lambda received: received.unique_spans == 6, timeout=30)
        assert wait_until(lambda: not spill_files(tmp_path), 10)
        # Counted once the file is deleted: a moment later (0 once, on a loaded machine).
        assert wait_until(lambda: processor.stats().replayed == 3, 10)
        assert rx.stats().duplicates == 0


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_log_records_are_spilled_counted_and_replayed(
    protocol: str, tmp_path: Path, shutdown_later: Callable[[Any], Any]
) -> None:
    with OTLPReceiver(protocol) as rx:
        rx.set_behaviour("down")
        if protocol == "http":
            exporter: Any = OTLPLogExporter(endpoint=rx.log_endpoint, timeout=1, spill_dir=tmp_path)
        else:
            exporter = spanbatch_grpc.OTLPLogExporter(
                endpoint=rx.log_endpoint, insecure=True, timeout=1, spill_dir=tmp_path
            )
        processor = shutdown_later(spanbatch.BatchLogRecordProcessor(exporter, schedule_delay_millis=60_000))
        for i in range(50):
            processor.on_emit(record(f"r{i}"))
        assert processor.force_flush(30_000)
        stats = processor.stats()
        assert (stats.exported, stats.spilled, stats.dropped_total) == (0, 50, 0)
        assert balanced(stats)
        rx.set_behaviour("ok")
        assert rx.wait_for(lambda received: received.log_records == 50, timeout=30)
        assert wait_until(lambda: not spill_files(tmp_path), 10)
        assert rx.log_bodies() == {f"r{i}": 1 for i in range(50)}
        assert processor.stats().replayed == 50
