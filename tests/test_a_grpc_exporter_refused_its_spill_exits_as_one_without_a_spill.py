"""A gRPC exporter given a spill directory but credentials spanbatch cannot read (``credentials=``, no ``spill_key``)
does not spill, and exits as an exporter without a spill directory does. It kept the exit's cut-off all the same,
which nothing sets for it: its first send at exit went the future's way, whose answer needs gRPC's channel spin
thread, which CPython 3.12+ cannot start at interpreter shutdown, and the process hung for good (revZ: 3 of 3 runs
on 3.12). Its first send is at exit here (the schedule delay is long)."""

from __future__ import annotations

import time

import pytest

from tests.helpers.apps import clean_env, run_app
from tests.helpers.net import free_port

pytestmark = pytest.mark.timeout(60)

APP = """
import sys

import grpc
from opentelemetry.sdk.trace import TracerProvider
from spanbatch import BatchSpanProcessor
from spanbatch.exporter.grpc import OTLPSpanExporter

port, spill_dir = sys.argv[1:3]
exporter = OTLPSpanExporter(
    endpoint=f"https://127.0.0.1:{port}", credentials=grpc.ssl_channel_credentials(), timeout=2, spill_dir=spill_dir
)
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
provider.get_tracer("app").start_span("at exit").end()
print("spilling" if exporter._spiller is not None else "not spilling", flush=True)
"""


def test_its_first_send_at_exit_ends_with_the_process(tmp_path: object) -> None:
    pytest.importorskip("grpc")
    began = time.monotonic()
    done = run_app(APP, str(free_port()), str(tmp_path), env=clean_env(), timeout=40)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "not spilling"
    assert "No disk spill" in done.stderr
    assert time.monotonic() - began < 30
