"""Log records, stock vs spanbatch side by side in one run (issue 15).

- ``on_emit`` per record: the cost the log processor adds to the application thread, at default
  settings and with an idle worker, to an exporter that only counts.
- End to end: one tight loop emitting GenAI-style events (event name, attributes, 2-20 KB bodies)
  through the SDK logger to a loopback OTLP/HTTP receiver in another process, then ``force_flush``:
  the stock processor with the stock exporter, spanbatch's with its Rust-encoded exporter, both at
  default settings. The receiver counts what arrived, so a lossy row shows it in ``dropped``.
- Exit with a dead back end: a fresh interpreter queues records for an OTLP/HTTP endpoint nobody
  listens on and ends; the time from its last statement to its end, at default settings.

Run with ``pytest tests/benchmarks/test_bench_logs.py --benchmark-only -p no:randomly`` (on a release
build: ``maturin develop --release``).
"""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

import os
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import spanbatch
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as StockOTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor as StockBatchLogRecordProcessor
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from spanbatch.exporter import OTLPLogExporter
from spanbatch.testing import OTLPReceiver

from tests.benchmarks.contenders import FLUSH_MILLIS
from tests.helpers import CountingExporter
from tests.helpers.logs import GENAI_EVENT, genai_text
from tests.helpers.net import free_port

NAMES = ["stock", "spanbatch"]
ON_EMIT_PER_ROUND = 1000
ON_EMIT_ROUNDS = 100
SETTINGS = {
    "default settings": {},
    "idle worker": {"max_queue_size": 1 << 18, "max_export_batch_size": 1 << 18, "schedule_delay_millis": 60_000},
}


def processor_class(name: str) -> Any:
    return StockBatchLogRecordProcessor if name == "stock" else spanbatch.BatchLogRecordProcessor


def one_record() -> ReadWriteLogRecord:
    """What the SDK logger hands its processors for one GenAI event (a 2 KB body)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        log = LogRecord(
            body=genai_text("emit", 2_000),
            event_name=GENAI_EVENT,
            severity_number=SeverityNumber.INFO,
            attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.usage.output_tokens": 300},
        )
        return ReadWriteLogRecord(log, Resource.create({"service.name": "bench"}))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_on_emit(benchmark: Any, request: pytest.FixtureRequest, name: str, setting: str) -> None:
    benchmark.group = f"logs: on_emit x{ON_EMIT_PER_ROUND} ({setting})"
    exporter = CountingExporter(results=LogRecordExportResult)  # only counts: the processor is measured
    processor = request.getfixturevalue("shutdown_later")(processor_class(name)(exporter, **SETTINGS[setting]))
    on_emit, record, records = processor.on_emit, one_record(), range(ON_EMIT_PER_ROUND)

    def emit_many() -> None:
        for _ in records:
            on_emit(record)

    benchmark.pedantic(emit_many, rounds=ON_EMIT_ROUNDS, iterations=1, warmup_rounds=2)
    produced = (ON_EMIT_ROUNDS + 2) * ON_EMIT_PER_ROUND
    processor.force_flush(FLUSH_MILLIS)
    benchmark.extra_info.update(
        spans_per_call=ON_EMIT_PER_ROUND, produced=produced, exported=exporter.count, dropped=produced - exporter.count
    )
    processor.shutdown()


E2E_RECORDS = 5_000
E2E_ROUNDS = 3
E2E_SIZES = (2_000, 5_000, 10_000, 20_000)


# And spanbatch with its opt-in block policy (``on_emit`` waits up to 100 ms for room): what it takes to lose nothing.
E2E_NAMES = [*NAMES, "spanbatch+block"]


def end_to_end_processor(name: str, endpoint: str, info: dict[str, Any]) -> LogRecordProcessor:
    if name == "stock":
        info["exporter"] = "stock OTLP/HTTP log exporter"
        return StockBatchLogRecordProcessor(StockOTLPLogExporter(endpoint=endpoint))
    info["exporter"] = "spanbatch OTLP/HTTP log exporter (Rust encoding)"
    policy: dict[str, Any] = {"drop_policy": "block"} if name == "spanbatch+block" else {}
    return spanbatch.BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint), **policy)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", E2E_NAMES)
def test_end_to_end_genai_events(benchmark: Any, receiver: OTLPReceiver, name: str) -> None:
    benchmark.group = f"logs: end to end OTLP/HTTP x{E2E_RECORDS} GenAI events (2-20 KB), tight loop, default settings"
    info = benchmark.extra_info
    bodies = [genai_text(f"e2e-{i}", E2E_SIZES[i % len(E2E_SIZES)]) for i in range(64)]  # made before the clock
    attributes = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.output_tokens": 300}
    rounds: list[dict[str, Any]] = []

    def finish_round() -> None:
        """Shut the last round's processor down (untimed) and count what reached the receiver."""
        last = rounds[-1]
        last["provider"].shutdown()
        last["received"] = receiver.stats().log_records
        if isinstance(last["processor"], spanbatch.BatchLogRecordProcessor):
            last["dropped"] = {r: n for r, n in last["processor"].stats().dropped.items() if n}

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        if rounds:  # pytest-benchmark has no per-round teardown
            finish_round()
        receiver.reset()
        processor = end_to_end_processor(name, receiver.log_endpoint, info)
        provider = LoggerProvider(resource=Resource.create({"service.name": "bench"}), shutdown_on_exit=False)
        provider.add_log_record_processor(processor)
        rounds.append({"processor": processor, "provider": provider})
        return (), {}

    def deliver() -> None:
        provider = rounds[-1]["provider"]
        logger = provider.get_logger("opentelemetry.instrumentation.openai_v2")
        for i in range(E2E_RECORDS):
            logger.emit(
                LogRecord(
                    body=bodies[i % len(bodies)],
                    event_name=GENAI_EVENT,
                    severity_number=SeverityNumber.INFO,
                    attributes=attributes,
                )
            )
        provider.force_flush(FLUSH_MILLIS)

    benchmark.pedantic(deliver, setup=setup, rounds=E2E_ROUNDS, iterations=1)
    finish_round()
    produced = E2E_RECORDS * len(rounds)
    exported = sum(r["received"] for r in rounds)
    reasons: dict[str, int] = {}
    for r in rounds:
        for reason, count in r.get("dropped", {}).items():
            reasons[reason] = reasons.get(reason, 0) + count
    info.update(spans_per_call=E2E_RECORDS, produced=produced, exported=exported, dropped=produced - exported)
    if reasons:
        info["dropped_by_reason"] = reasons


EXIT_RECORDS = 1000
ROOT = Path(__file__).parents[2]
# The app: defaults everywhere (the exporter's 10 s timeout, the processor's 30 s export deadline,
# spanbatch's 5 s SPANBATCH_EXIT_TIMEOUT_MS); the provider shuts down at exit (the SDK's atexit hook).
_EXIT_APP = f"""
import sys, time
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
name, endpoint = sys.argv[1:3]
if name == "stock":
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
else:
    from spanbatch.exporter import OTLPLogExporter
    from spanbatch import BatchLogRecordProcessor
provider = LoggerProvider()
provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint)))
logger = provider.get_logger("bench")
for i in range({EXIT_RECORDS}):
    logger.emit(LogRecord(body=f"doomed {{i}}", event_name="gen_ai.choice"))
print(repr(time.time()), flush=True)
"""


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", NAMES)
def test_exit_with_dead_backend(benchmark: Any, name: str) -> None:
    benchmark.group = f"logs: interpreter exit, back end down, {EXIT_RECORDS} records queued, default settings"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPANBATCH_"))}
    endpoint = f"http://127.0.0.1:{free_port()}/v1/logs"
    argv = [sys.executable, "-W", "ignore", "-c", textwrap.dedent(_EXIT_APP), name, endpoint]
    state: dict[str, float] = {}

    def run() -> None:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=200, env=env, check=True, cwd=ROOT)
        state["exit_seconds"] = time.time() - float(done.stdout.split()[-1])

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(
        produced=EXIT_RECORDS, exported=0, dropped=EXIT_RECORDS, exit_seconds=round(state["exit_seconds"], 2)
    )
