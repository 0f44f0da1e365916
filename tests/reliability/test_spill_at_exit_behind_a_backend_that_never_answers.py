"""Exit with a spill directory and a backend that takes the connection but never answers (a wedged collector).

The request in flight holds the exporter's whole timeout: at the default 10 s, past the 5 s exit limit, nothing
reaches the disk (the README says so). With a ``timeout`` well under the exit limit, as the README advises, the
request times out, the exit cuts the stock backoff short, and it and the queue behind it are all on disk.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from spanbatch._spill import SpillStore
from spanbatch.testing import OTLPReceiver

from tests.helpers.apps import clean_env, run_app
from tests.helpers.spill import replayed, spill_files

pytestmark = pytest.mark.timeout(120)

SPANS = 2000

APP = f"""
import sys
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor
protocol, endpoint, spill = sys.argv[1:]
if protocol == "http":
    from spanbatch.exporter import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=endpoint, spill_dir=spill, timeout=2)
else:
    from spanbatch.exporter.grpc import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True, spill_dir=spill, timeout=2)
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(exporter))
tracer = provider.get_tracer("app")
for i in range({SPANS}):
    tracer.start_span(f"s{{i}}").end()
"""


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_with_a_timeout_under_the_exit_limit_every_span_is_on_disk(protocol: str, tmp_path: Path) -> None:
    with OTLPReceiver(protocol) as rx:
        rx.set_behaviour("hang")
        app = run_app(APP, protocol, rx.endpoint, str(tmp_path), env=clean_env(), timeout=60)
        rx.set_behaviour("ok")
    assert app.returncode == 0, app.stderr
    stored = [
        span.name
        for directory in {path.parent for path in spill_files(tmp_path)}
        for payload in replayed(SpillStore(directory, 1 << 30))
        for resource in ExportTraceServiceRequest.FromString(payload).resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert sorted(stored) == sorted(f"s{i}" for i in range(SPANS)), app.stderr
