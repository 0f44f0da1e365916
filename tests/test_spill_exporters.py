"""spanbatch's OTLP exporters with a spill directory, against a real receiver in its own process."""

from __future__ import annotations

import gc
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import spanbatch
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor as StockBatchSpanProcessor
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanContext, TraceFlags
from spanbatch._spill import Sent
from spanbatch.testing import OTLPReceiver

from tests.helpers import balanced, end_spans, in_child, libc_fork, make_span, provider_with, wait_until
from tests.helpers.metrics import metric_points
from tests.helpers.spill import spill_files, spilling_exporter

pytestmark = pytest.mark.timeout(90)

SPANS = 1500  # three batches of 512, the last one partial


def test_an_outage_is_spilled_counted_and_replayed_once_the_backend_answers(
    down_receiver: OTLPReceiver, tmp_path: Path, shutdown_later: Callable[[Any], Any]
) -> None:
    rx = down_receiver
    exporter = spilling_exporter(rx, tmp_path)
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, max_queue_size=SPANS))
    ids = end_spans(provider_with(processor), SPANS)
    assert processor.force_flush(30_000)
    stats = processor.stats()
    assert (stats.exported, stats.spilled, stats.dropped_total) == (0, SPANS, 0)
    assert balanced(stats)
    assert spill_files(tmp_path)
    rx.set_behaviour("ok")
    assert rx.wait_for_spans(SPANS, timeout=30)
    assert wait_until(lambda: not spill_files(tmp_path), 10)
    assert rx.span_ids() == ids
    assert rx.stats().duplicates == 0
    stats = processor.stats()
    assert (stats.spilled, stats.replayed, stats.spill_corrupt) == (SPANS, SPANS, 0)
    assert balanced(stats)


def test_new_spans_go_to_the_backend_again_once_it_answers(
    down_receiver: OTLPReceiver, tmp_path: Path, shutdown_later: Callable[[Any], Any]
) -> None:
    rx = down_receiver
    processor = shutdown_later(spanbatch.BatchSpanProcessor(spilling_exporter(rx, tmp_path)))
    provider = provider_with(processor)
    first = end_spans(provider, 10)
    assert processor.force_flush(30_000)
    rx.set_behaviour("ok")
    assert rx.wait_for_spans(10, timeout=30)
    # The receiver has them once it answered; the exporter knows it (and counts them) once it read the answer.
    assert wait_until(lambda: processor.stats().replayed == 10, 10)
    second = end_spans(provider, 10, "after")
    assert processor.force_flush(30_000)
    assert rx.span_ids() == first | second
    stats = processor.stats()
    assert (stats.exported, stats.spilled, stats.replayed) == (10, 10, 10)


def test_without_a_spill_directory_an_outage_drops_as_before(
    down_receiver: OTLPReceiver, shutdown_later: Callable[[Any], Any]
) -> None:
    processor = shutdown_later(spanbatch.BatchSpanProcessor(spilling_exporter(down_receiver, None)))
    end_spans(provider_with(processor), 10)
    assert processor.force_flush(30_000)
    stats = processor.stats()
    assert (stats.spilled, stats.dropped["export_failed"]) == (0, 10)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_request_the_backend_refuses_is_not_spilled(
    protocol: str, tmp_path: Path, shutdown_later: Callable[[Any], Any]
) -> None:
    with OTLPReceiver(protocol) as rx:
        rx.set_behaviour("status", status=400)
        processor = shutdown_later(spanbatch.BatchSpanProcessor(spilling_exporter(rx, tmp_path)))
        end_spans(provider_with(processor), 10)
        assert processor.force_flush(30_000)
        stats = processor.stats()
    assert (stats.spilled, stats.dropped["export_failed"]) == (0, 10)
    assert spill_files(tmp_path) == []


def test_a_spill_directory_that_cannot_be_written_warns_once_and_drops_as_before(
    down_receiver: OTLPReceiver, tmp_path: Path, shutdown_later: Callable[[Any], Any], caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("")
    with caplog.at_level(logging.WARNING, "spanbatch"):
        exporter = spilling_exporter(down_receiver, tmp_path / "file" / "spill")
        processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter, max_export_batch_size=5))
        end_spans(provider_with(processor), 10)
        assert processor.force_flush(30_000)
    stats = processor.stats()
    assert (stats.spilled, stats.dropped["export_failed"]) == (0, 10)
    assert balanced(stats)
    assert sum("Cannot write to the spill directory" in r.getMessage() for r in caplog.records) == 1


def test_a_new_exporter_on_the_same_directory_replays_what_an_earlier_one_left(
    down_receiver: OTLPReceiver, tmp_path: Path, shutdown_later: Callable[[Any], Any]
) -> None:
    rx = down_receiver
    first = spanbatch.BatchSpanProcessor(spilling_exporter(rx, tmp_path))
    ids = end_spans(provider_with(first), 20)
    first.shutdown()
    assert first.stats().spilled == 20
    rx.set_behaviour("ok")
    later = shutdown_later(spanbatch.BatchSpanProcessor(spilling_exporter(rx, tmp_path)))
    assert rx.wait_for_spans(20, timeout=30)
    assert rx.span_ids() == ids
    assert wait_until(lambda: later.stats().replayed == 20, 10)


def test_spill_off_adds_nothing(tmp_path: Path, shutdown_later: Callable[[Any], Any]) -> None:
    with OTLPReceiver("http") as rx:
        exporter = spilling_exporter(rx, None)
        assert exporter.spill_counts() is None
        processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter))
        end_spans(provider_with(processor), 10)
        assert processor.force_flush(30_000)
        stats = processor.stats()
    assert (stats.exported, stats.spilled, stats.replayed) == (10, 0, 0)
    assert list(tmp_path.iterdir()) == []


def test_the_variable_sets_the_directory_and_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPANBATCH_SPILL_DIR", str(tmp_path))
    monkeypatch.setenv("SPANBATCH_SPILL_MAX_BYTES", "12345")
    from spanbatch.exporter import OTLPSpanExporter  # noqa: PLC0415

    exporter = OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")
    try:
        assert exporter._spiller is not None
        assert exporter._spiller.store.max_bytes == 12345
        assert exporter._spiller.store.directory.parent == tmp_path
    finally:
        exporter.shutdown()


@pytest.mark.parametrize(
    ("cap", "error"), [(0, ValueError), (-1, ValueError), ("abc", TypeError), (1.5, TypeError), (True, TypeError)]
)
@pytest.mark.parametrize("spilling", [True, False])
def test_a_bad_cap_argument_raises_as_the_byte_limit_does(
    cap: object, error: type[Exception], spilling: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong type is a TypeError and a wrong value a ValueError, as for ``max_export_batch_bytes`` (revM: "abc"
    raised ValueError here, TypeError there), whether or not a spill directory is set where the exporter runs."""
    from spanbatch.exporter import OTLPSpanExporter  # noqa: PLC0415

    monkeypatch.delenv("SPANBATCH_SPILL_DIR", raising=False)
    with pytest.raises(error, match="spill_max_bytes"):
        OTLPSpanExporter(
            endpoint="http://127.0.0.1:9/v1/traces",
            spill_dir=tmp_path if spilling else None,
            spill_max_bytes=cap,  # type: ignore[arg-type]
        )


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_hanging_backend_is_waited_for_once_then_requests_go_straight_to_disk(
    protocol: str, tmp_path: Path, shutdown_later: Callable[[Any], Any]
) -> None:
    with OTLPReceiver(protocol) as rx:
        rx.set_behaviour("hang")
        processor = shutdown_later(
            spanbatch.BatchSpanProcessor(spilling_exporter(rx, tmp_path), max_export_batch_size=5, max_queue_size=100)
        )
        end_spans(provider_with(processor), 40)
        assert processor.force_flush(60_000)
        stats = processor.stats()
        hung = rx.stats().hung
        rx.set_behaviour("ok")
    assert (stats.spilled, stats.dropped_total) == (40, 0)
    assert hung <= 2  # the first request (and the stock client's one quick retry), not one per batch


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_at_exit_a_send_the_backend_never_answers_is_cut_short_and_spilled(protocol: str, tmp_path: Path) -> None:
    # Its own timeout outlasts the test: only the cut-off set at exit, once the request is at the backend, ends it.
    with OTLPReceiver(protocol) as rx:
        rx.set_behaviour("hang")
        exporter = spilling_exporter(rx, tmp_path, timeout=600)
        try:
            results: list[SpanExportResult] = []
            spans = [make_span(f"s{i}", span_id=i + 1) for i in range(5)]
            export = threading.Thread(target=lambda: results.append(exporter.export(spans)), daemon=True)
            export.start()
            assert wait_until(lambda: rx.stats().hung == 1, 30)
            exporter._spiller.exit_begins(time.monotonic() + 0.2)
            export.join(60)
            assert not export.is_alive()
            assert results == [SpanExportResult.SUCCESS]
            assert exporter.spill_counts().spilled == 5
            assert len(spill_files(tmp_path)) == 1
        finally:
            rx.set_behaviour("ok")
            exporter.shutdown()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_at_exit_a_replay_cut_short_or_begun_past_the_cutoff_is_no_answer_about_its_file(
    protocol: str, tmp_path: Path
) -> None:
    # A file answered busy a few times is passed over (``_spill``): the exit's cut-off is not the backend's answer.
    with OTLPReceiver(protocol) as rx:
        rx.set_behaviour("hang")
        exporter = spilling_exporter(rx, tmp_path, timeout=600)
        spiller = exporter._spiller
        try:
            sent: list[Sent] = []
            replay = threading.Thread(target=lambda: sent.append(spiller._send(b"")), daemon=True)
            replay.start()
            assert wait_until(lambda: rx.stats().hung == 1, 30)
            spiller.exit_begins(time.monotonic() + 0.2)
            replay.join(60)
            assert sent == [Sent.UNREACHABLE]
            assert spiller._send(b"") is Sent.UNREACHABLE
        finally:
            rx.set_behaviour("ok")
            exporter.shutdown()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_at_exit_a_large_send_a_frozen_backend_never_reads_is_cut_short_and_spilled(
    protocol: str, tmp_path: Path
) -> None:
    # A frozen backend (stopped, deadlocked): its kernel takes the connection, nobody reads, so a request larger than
    # the socket buffers (10 MB, past Linux's 4 MB send buffer at most) waits in its write, not for an answer. (A gRPC
    # call waits before that, for the backend's half of the HTTP/2 handshake, which gRPC gives up on after 20 s.)
    with socket.socket() as frozen:
        frozen.bind(("127.0.0.1", 0))
        frozen.listen(8)
        frozen.settimeout(30)
        port = frozen.getsockname()[1]
        endpoint = f"http://127.0.0.1:{port}/v1/traces" if protocol == "http" else f"127.0.0.1:{port}"
        exporter = spilling_exporter(_AtEndpoint(protocol, endpoint), tmp_path, timeout=600)
        try:
            context = SpanContext(1, 1, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
            spans = [ReadableSpan(name=f"s{i}", context=context, attributes={"blob": "x" * 40_000}) for i in range(256)]
            results: list[SpanExportResult] = []
            export = threading.Thread(target=lambda: results.append(exporter.export(spans)), daemon=True)
            export.start()
            # Under way once its first bytes are at the backend (both exporters connect at their first send): a
            # cut-off set before it begins is another test's. Accepted and peeked at, never read: still frozen.
            connection, _ = frozen.accept()
            with connection:
                connection.settimeout(30)
                assert connection.recv(1, socket.MSG_PEEK)
                exporter._spiller.exit_begins(time.monotonic() + 0.2)
                # Only the cut-off ends it this soon: its own timeout is 600 s, gRPC's handshake one 20 s. The wait
                # leaves what follows the cut (10 MB encoded, written to disk and synced) seconds on a loaded machine.
                export.join(15)
                assert not export.is_alive()
            assert results == [SpanExportResult.SUCCESS]
            assert exporter.spill_counts().spilled == 256
        finally:
            exporter.shutdown()


@dataclass(frozen=True)
class _AtEndpoint:
    """What ``spilling_exporter`` reads of a receiver, for a backend that is not one."""

    protocol: str
    endpoint: str


def test_spilled_spans_count_as_processed_in_the_self_metrics(
    down_receiver: OTLPReceiver, tmp_path: Path, shutdown_later: Callable[[Any], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    reader = InMemoryMetricReader()
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(
            spilling_exporter(down_receiver, tmp_path), meter_provider=MeterProvider(metric_readers=[reader])
        )
    )
    end_spans(provider_with(processor), 10)
    assert processor.force_flush(30_000)
    assert processor.stats().spilled == 10
    processed = {a.get("error.type"): v for a, v in metric_points(reader)["otel.sdk.processor.span.processed"]}
    assert processed == {None: 10}


# HTTP only: forked from this test process, which holds earlier tests' gRPC channels and their threads, a
# gRPC child failed about 1 full-suite run in 3 (gRPC supports fork only with GRPC_ENABLE_FORK_SUPPORT and
# no call in flight); alone it passed 24 runs of 24. Open: a gRPC variant run from a fresh interpreter.
@pytest.mark.parametrize("down_receiver", ["http"], indirect=True)
@pytest.mark.parametrize(
    "fork",
    [os.fork, pytest.param(libc_fork, marks=pytest.mark.alone)],  # no other thread may want the GIL at a hookless fork
    ids=["os.fork", "libc_fork"],
)
def test_a_forked_child_replays_with_a_thread_of_its_own(
    down_receiver: OTLPReceiver, tmp_path: Path, fork: Callable[[], int]
) -> None:
    rx = down_receiver
    exporter = spilling_exporter(rx, tmp_path)
    processor = spanbatch.BatchSpanProcessor(exporter)
    provider = provider_with(processor)
    try:
        ids = end_spans(provider, 10)
        assert processor.force_flush(30_000)
        assert processor.stats().spilled == 10
        parent_thread = exporter._spiller._thread
        assert parent_thread is not None
        assert parent_thread.is_alive()

        def child() -> dict[str, Any]:
            more = end_spans(provider, 10, "child")
            processor.force_flush(30_000)
            rx.set_behaviour("ok")
            delivered = rx.wait_for_spans(20, timeout=30)
            stats = processor.stats()
            return {"delivered": delivered, "spilled": stats.spilled, "more": sorted(m.hex() for m in more)}

        result = in_child(child, fork, timeout=60)
        assert result["delivered"]
        assert result["spilled"] == 10  # the child's own
        assert rx.span_ids() == ids | {bytes.fromhex(m) for m in result["more"]}
        assert rx.stats().duplicates == 0
    finally:
        processor.shutdown()


def test_with_nothing_on_disk_and_no_disk_to_write_to_requests_try_the_backend_again(
    down_receiver: OTLPReceiver, tmp_path: Path, shutdown_later: Callable[[Any], Any]
) -> None:
    rx = down_receiver
    # Spilled once the retries of a 2 s timeout are spent (at 10 s, 7.5 s of the test went on the first flush).
    exporter = spilling_exporter(rx, tmp_path, timeout=2)
    processor = shutdown_later(spanbatch.BatchSpanProcessor(exporter))
    provider = provider_with(processor)
    first = end_spans(provider, 5)
    assert processor.force_flush(30_000)
    assert processor.stats().spilled == 5
    store = exporter._spiller.store
    for path in store.pending():  # gone (as if evicted by another process), and the disk unwritable
        path.unlink()
    (store.directory / "tmp").rmdir()
    (store.directory / "tmp").write_text("")
    rx.set_behaviour("ok")
    assert wait_until(lambda: not exporter._spiller._replaying, 10)
    if rx.protocol == "grpc":
        # A gRPC channel that failed waits out its reconnect backoff before it tries again, and every failed
        # attempt of the outage (the stock retries, the probes) lengthened it: under load it can outlast the
        # stock retries of the next request. That is the channel's own behaviour, not what is tested here.
        grpc.channel_ready_future(exporter._channel).result(timeout=60)
    later = end_spans(provider, 5, "later")
    assert processor.force_flush(30_000)
    assert processor.stats().exported == 5
    # A probe that had read the file before it was unlinked may still deliver it once the backend is back
    # (the CI saw it once under load): that is no loss. What is tested is that the later ones got through.
    assert later <= rx.span_ids() <= later | first
    assert rx.stats().duplicates == 0


def test_stats_read_while_spans_are_spilled_always_balance(
    down_receiver: OTLPReceiver, tmp_path: Path, shutdown_later: Callable[[Any], Any]
) -> None:
    processor = shutdown_later(
        spanbatch.BatchSpanProcessor(spilling_exporter(down_receiver, tmp_path), max_export_batch_size=20)
    )
    provider = provider_with(processor)
    unbalanced: list[Any] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            stats = processor.stats()
            if not balanced(stats) or stats.exported < 0:
                unbalanced.append(stats)
            # Thousands of reads a second, without holding the GIL from the worker for a switch interval each time.
            time.sleep(0.0001)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(20):
            end_spans(provider, 100)
            processor.force_flush(30_000)
    finally:
        done.set()
        reader.join()
    assert unbalanced == []
    assert processor.stats().spilled == 2000


def test_behind_the_stock_processor_an_outage_is_spilled_and_replayed(
    down_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    rx = down_receiver
    exporter = spilling_exporter(rx, tmp_path)
    processor = StockBatchSpanProcessor(exporter)
    try:
        ids = end_spans(provider_with(processor), 50)
        assert processor.force_flush(30_000)
        assert exporter.spill_counts().spilled == 50
        rx.set_behaviour("ok")
        assert rx.wait_for_spans(50, timeout=30)
        assert rx.span_ids() == ids
        assert wait_until(lambda: exporter.spill_counts().replayed == 50, 10)
    finally:
        processor.shutdown()


def test_a_spilling_processor_and_its_core_are_freed_after_shutdown(
    down_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    # Nothing spanbatch keeps for the spill's counts may outlive the processor (a process that makes
    # processors over and over would keep every one of their queues).
    processor = spanbatch.BatchSpanProcessor(spilling_exporter(down_receiver, tmp_path))
    end_spans(provider_with(processor), 10)
    assert processor.force_flush(30_000)
    assert processor.stats().spilled == 10
    processor.shutdown()
    refs = [weakref.ref(processor), *(weakref.ref(lane.core) for lane in processor._lanes)]
    del processor
    gc.collect()
    assert [ref() for ref in refs] == [None] * len(refs)


def test_the_spill_is_a_capability_of_the_class(tmp_path: Path) -> None:
    from unittest import mock  # noqa: PLC0415

    from spanbatch._capabilities import spills  # noqa: PLC0415
    from spanbatch.exporter import OTLPLogExporter, OTLPSpanExporter  # noqa: PLC0415
    from spanbatch.exporter import grpc as spanbatch_grpc  # noqa: PLC0415

    class Filtering(OTLPSpanExporter):
        def export(self, spans: Any) -> Any:  # the user's own export: what it hands on is its business
            return super().export(spans)

    exporters = [
        OTLPSpanExporter(spill_dir=tmp_path),
        OTLPLogExporter(spill_dir=tmp_path),
        spanbatch_grpc.OTLPSpanExporter(insecure=True, spill_dir=tmp_path),
        spanbatch_grpc.OTLPLogExporter(insecure=True, spill_dir=tmp_path),
    ]
    try:
        assert [spills(e) for e in exporters] == [True] * 4
        assert not spills(mock.Mock())
        filtering = Filtering(spill_dir=tmp_path)
        assert not spills(filtering)
        filtering.shutdown()
    finally:
        for exporter in exporters:
            exporter.shutdown()
