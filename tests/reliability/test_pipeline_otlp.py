"""Several backends over real OTLP: HTTP and gRPC lanes, isolation, exit and SIGTERM deadlines, zero-code."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import spanbatch
from spanbatch.testing import OTLPReceiver

from tests.helpers import end_spans, provider_with

pytestmark = pytest.mark.timeout(120)
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


@pytest.fixture
def receivers() -> Iterator[tuple[OTLPReceiver, OTLPReceiver]]:
    with OTLPReceiver("http") as http, OTLPReceiver("grpc") as grpc:
        yield http, grpc


def test_http_and_grpc_backends_each_receive_every_span(
    receivers: tuple[OTLPReceiver, OTLPReceiver], shutdown_later: Later
) -> None:
    http, grpc = receivers
    provider = provider_with()
    # Queues sized for the burst: this is about fan-out, not about overflow.
    exporters = {"http": http.span_exporter(), "grpc": grpc.span_exporter()}
    pipeline = shutdown_later(spanbatch.install(provider, exporters, max_queue_size=4096))
    ids = end_spans(provider, 3000)
    with pipeline.session():
        pass
    assert http.span_ids() == grpc.span_ids() == ids
    assert {name: s.exported for name, s in pipeline.stats_by_backend().items()} == {"http": 3000, "grpc": 3000}
    pipeline.shutdown()


def test_a_hanging_backend_does_not_slow_the_others(
    receivers: tuple[OTLPReceiver, OTLPReceiver], monkeypatch: pytest.MonkeyPatch, shutdown_later: Later
) -> None:
    http, grpc = receivers
    grpc.set_behaviour("hang")
    monkeypatch.setenv("SPANBATCH_HANGING_MAX_QUEUE_SIZE", "500")
    monkeypatch.setenv("SPANBATCH_HANGING_MAX_EXPORT_BATCH_SIZE", "100")
    provider = provider_with()
    exporters = {"healthy": http.span_exporter(), "hanging": grpc.span_exporter(timeout=30)}
    pipeline = shutdown_later(spanbatch.install(provider, exporters, max_queue_size=None))
    ids = end_spans(provider, 2000)  # fits the healthy lane's 2048
    started = time.monotonic()
    assert pipeline.end_session(1000) == {"healthy": True, "hanging": False}
    assert time.monotonic() - started < 3
    assert http.span_ids() == ids
    healthy, hanging = pipeline.stats_by_backend().values()
    assert (healthy.exported, healthy.dropped_total) == (2000, 0)
    assert hanging.exported == 0
    assert hanging.dropped["queue_full"] >= 2000 - 500 - 100
    pipeline.shutdown(500)


APP = """
import faulthandler, signal
faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test asks for stacks if the app hangs
import os, sys, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
import spanbatch

provider = TracerProvider()
exporters = {{f"dead{{i}}": OTLPSpanExporter(endpoint="{endpoint}", timeout=30) for i in range(3)}}
pipeline = spanbatch.install(provider, exporters)
tracer = provider.get_tracer("app")
for i in range(200):
    tracer.start_span("s").end()
print("ready", flush=True)
{tail}
"""


def run_app(endpoint: str, tail: str, env: dict[str, str]) -> subprocess.Popen[str]:
    script = textwrap.dedent(APP.format(endpoint=endpoint, tail=tail))
    return subprocess.Popen(
        [sys.executable, "-c", script],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_or_dump_stacks(app: subprocess.Popen[str], timeout: float) -> None:
    """Wait for ``app`` to exit; if it does not, fail with every thread's stack."""
    try:
        app.wait(timeout)
    except subprocess.TimeoutExpired:
        app.send_signal(signal.SIGUSR1)
        time.sleep(1)
        app.kill()
        _, stderr = app.communicate(timeout=10)
        pytest.fail(f"the app did not exit within {timeout:g} s; its threads:\n{stderr}")


def test_exit_with_three_hanging_backends_takes_one_deadline() -> None:
    with OTLPReceiver("http") as rx:
        rx.set_behaviour("hang")
        started = time.monotonic()
        app = run_app(rx.endpoint, "", {"SPANBATCH_EXIT_TIMEOUT_MS": "1500"})
        wait_or_dump_stacks(app, 60)
        took = time.monotonic() - started
    assert app.returncode == 0
    # One 1.5 s deadline for all three, not 3 x 30 s (nor 3 x 1.5 s), plus interpreter start-up.
    assert took < 6, took


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name != "posix", reason="POSIX signals")
def test_sigterm_flushes_every_backend_then_terminates() -> None:
    with OTLPReceiver("http") as rx:
        # CPython runs a Python signal handler between bytecodes, or when the signal interrupts
        # a blocking call. A SIGTERM landing after the last check and before a long sleep begins
        # waits that sleep out (seen once in CI: 30 s in time.sleep(60), handler not yet run), so
        # the app idles in short sleeps, as a real main loop does.
        tail = "for _ in range(600):\n    time.sleep(0.1)"
        app = run_app(rx.endpoint, tail, {"SPANBATCH_FLUSH_ON_SIGTERM": "true"})
        assert app.stdout is not None
        assert app.stdout.readline().strip() == "ready"
        app.send_signal(signal.SIGTERM)
        wait_or_dump_stacks(app, 30)
        assert app.returncode == -signal.SIGTERM
        assert rx.wait_for_spans(600, timeout=10)
        assert rx.stats().spans == 600


ZERO_CODE_APP = """
from opentelemetry import trace
import spanbatch
tracer = trace.get_tracer("app")
for i in range(50):
    tracer.start_span(f"s{i}").end()
processors = trace.get_tracer_provider()._active_span_processor._span_processors
print(",".join(type(p).__module__ + "." + type(p).__name__ for p in processors))
"""


@pytest.mark.skipif(shutil.which("opentelemetry-instrument") is None, reason="needs opentelemetry-instrument")
def test_zero_code_set_up_batches_the_configured_exporters_with_spanbatch(tmp_path: object) -> None:
    with OTLPReceiver("http") as rx:
        env = {
            **os.environ,
            "OTEL_PYTHON_CONFIGURATOR": "spanbatch",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": rx.endpoint,
        }
        instrument = shutil.which("opentelemetry-instrument")
        assert instrument is not None
        done = subprocess.run(
            [instrument, sys.executable, "-c", ZERO_CODE_APP],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "spanbatch.processor.BatchSpanProcessor"
        assert rx.wait_for_spans(50, timeout=10)
        assert rx.stats().spans == 50
