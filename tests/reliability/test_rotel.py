"""App -> spanbatch -> OTLP -> rotel (a real collector) -> our receiver: every span arrives once."""

from __future__ import annotations

import os
import socket
import subprocess
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from spanbatch import BatchSpanProcessor
from spanbatch.testing import OTLPReceiver

from tests.helpers import end_spans, provider_with, wait_until
from tests.helpers.net import free_port

pytestmark = pytest.mark.timeout(120)
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture


def rotel_agent() -> Path:
    try:
        import rotel  # noqa: PLC0415 -- optional: the test skips without it
    except ImportError:
        reason = "rotel is not installed (pip install rotel; wheels exist for some Linux/macOS platforms only)"
        if os.environ.get("CI", "").lower() in ("true", "1"):  # the [test] extra installs it where wheels exist
            pytest.fail(reason)
        pytest.skip(reason)
    agent = Path(rotel.__file__).parent / "rotel-agent"
    if not os.access(agent, os.X_OK):
        pytest.skip(f"the rotel package has no runnable agent at {agent}")
    return agent


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
    except OSError:
        return False
    return True


@pytest.fixture
def rotel_to_receiver() -> Iterator[tuple[OTLPReceiver, int, int]]:
    """Our gRPC receiver, and rotel forwarding to it; yields (receiver, rotel grpc port, rotel http port)."""
    agent = rotel_agent()
    with OTLPReceiver("grpc") as rx:
        grpc_port, http_port = free_port(), free_port()
        command = [
            str(agent),
            "start",
            "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}",
            "--otlp-http-endpoint", f"127.0.0.1:{http_port}",
            "--exporter", "otlp",
            "--otlp-exporter-protocol", "grpc",
            "--otlp-exporter-endpoint", f"http://{rx.endpoint}",
            "--batch-timeout", "100ms",
        ]  # fmt: skip
        # The agent links the libpython of the CPython its wheel is for; a CPython outside the system paths
        # (pyenv's) keeps it in its LIBDIR, which the dynamic loader does not search by itself.
        libdir = sysconfig.get_config_var("LIBDIR") or ""
        env = {
            **os.environ,
            "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [libdir, os.environ.get("LD_LIBRARY_PATH")])),
        }
        collector = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            assert wait_until(lambda: accepts(grpc_port), timeout=15), "rotel did not open its gRPC port"
            assert wait_until(lambda: accepts(http_port), timeout=15), "rotel did not open its HTTP port"
            yield rx, grpc_port, http_port
        finally:
            collector.terminate()
            try:
                collector.wait(10)
            except subprocess.TimeoutExpired:
                collector.kill()
                collector.wait(5)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_spans_pass_through_rotel_exactly_once(
    rotel_to_receiver: tuple[OTLPReceiver, int, int], protocol: str, shutdown_later: Later
) -> None:
    rx, grpc_port, http_port = rotel_to_receiver
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HTTPExporter  # noqa: PLC0415

        exporter = HTTPExporter(endpoint=f"http://127.0.0.1:{http_port}/v1/traces", timeout=10)
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GRPCExporter  # noqa: PLC0415

        exporter = GRPCExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True, timeout=10)
    processor = shutdown_later(
        BatchSpanProcessor(exporter, max_queue_size=8192)
    )  # room for every span: no drops expected
    provider = provider_with(processor)
    ids = end_spans(provider, 5_000, name="via-rotel")
    assert processor.force_flush(20_000)
    stats = processor.stats()
    provider.shutdown()

    assert stats.exported == 5_000
    assert stats.dropped_total == 0
    assert rx.wait_for_spans(5_000, timeout=20)
    received = rx.stats()
    assert received.spans == received.unique_spans == 5_000
    assert rx.span_ids() == ids
