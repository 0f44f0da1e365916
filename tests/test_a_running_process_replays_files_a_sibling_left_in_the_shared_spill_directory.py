"""A process whose exports go through replays, now and then, the files another process sharing its spill directory
left there (one killed, or one that exited, during an outage) (revR: a sibling running healthy for 20 s kept a killed
one's 40 files; only a process starting, or spilling itself, looked at the directory)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import _spilling
from spanbatch.testing import OTLPReceiver

from tests.helpers.apps import clean_env

pytestmark = pytest.mark.timeout(60)

# argv: protocol, endpoint, spill directory. Ends 20 spans while its backend is down and exits: they stay on disk.
SIBLING = """
import sys
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor
from spanbatch.exporter import OTLPSpanExporter
from spanbatch.exporter.grpc import OTLPSpanExporter as GrpcExporter

protocol, endpoint, spill_dir = sys.argv[1:4]
if protocol == "http":
    exporter = OTLPSpanExporter(endpoint=endpoint, spill_dir=spill_dir, timeout=1)
else:
    exporter = GrpcExporter(endpoint=endpoint, insecure=True, spill_dir=spill_dir, timeout=1)
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(exporter))
for _ in range(20):
    provider.get_tracer("sibling").start_span("left on disk").end()
"""


def spilling_exporter(protocol: str, endpoint: str, spill_dir: Path) -> Any:
    from spanbatch.exporter import OTLPSpanExporter  # noqa: PLC0415
    from spanbatch.exporter.grpc import OTLPSpanExporter as GrpcExporter  # noqa: PLC0415

    if protocol == "http":
        return OTLPSpanExporter(endpoint=endpoint, spill_dir=spill_dir, timeout=1)
    return GrpcExporter(endpoint=endpoint, insecure=True, spill_dir=spill_dir, timeout=1)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_the_files_a_sibling_left_are_replayed_by_the_running_process(
    protocol: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_spilling, "LEFT_FILES_LOOK_SECONDS", 0.2)
    with OTLPReceiver(protocol) as rx:
        running = BatchSpanProcessor(spilling_exporter(protocol, rx.endpoint, tmp_path), schedule_delay_millis=50)
        provider = TracerProvider()
        provider.add_span_processor(running)
        try:
            rx.set_behaviour("down")
            sibling = subprocess.run(
                [sys.executable, "-c", SIBLING, protocol, rx.endpoint, str(tmp_path)],
                capture_output=True,
                text=True,
                timeout=30,
                env=clean_env(),
                check=False,
            )
            assert sibling.returncode == 0, sibling.stderr
            rx.set_behaviour("ok")
            for _ in range(30):  # the running process's own exports, each a chance to look
                provider.get_tracer("running").start_span("sent").end()
                running.force_flush(5_000)
                if rx.wait_for(lambda stats: stats.spans >= 20 + 1, timeout=0.3) and "left on disk" in rx.span_names():
                    break
            rx.wait_for(lambda _stats: rx.span_names().get("left on disk", 0) >= 20, timeout=5)
            assert rx.span_names().get("left on disk", 0) == 20
            assert rx.stats().duplicates == 0
            assert running.stats().spilled == 0
        finally:
            provider.shutdown()
