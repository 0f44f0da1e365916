"""Evictions the rate limit left unsaid are said when the exporter shuts down with the backend still down (revM:
2,000 spans over a 200 KB cap, 1,024 evicted and counted, one line said 512 of them and the process exited)."""

from __future__ import annotations

import logging
import re
import socket
from pathlib import Path

import pytest
import spanbatch
from opentelemetry.sdk.trace import TracerProvider
from spanbatch.exporter import OTLPSpanExporter

pytestmark = pytest.mark.timeout(60)

LINE = re.compile(r"evicted the oldest (\d+) file\(s\), (\d+) spans?")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_evictions_the_rate_limit_held_back_are_said_when_the_exporter_shuts_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{closed_port()}/v1/traces",
        spill_dir=str(tmp_path),
        spill_max_bytes=200_000,
        timeout=1,
    )
    processor = spanbatch.BatchSpanProcessor(exporter)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    with caplog.at_level(logging.WARNING, "spanbatch"):
        for _ in range(2000):
            tracer.start_span("s", attributes={"a": "x" * 100}).end()
        provider.shutdown()
    evicted = processor.stats().spill_evicted
    said = [tuple(map(int, m.groups())) for r in caplog.records if (m := LINE.search(r.getMessage()))]
    assert evicted >= 2 * 512  # two files or more within the rate limit's interval: it held the later ones back
    assert sum(spans for _, spans in said) == evicted, said
