"""What a spill does with requests the backend refuses: for their size, for good, or one file again and again."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import spanbatch
from spanbatch._spill import CORRUPT_DIR, Sent, SpillStore
from spanbatch.exporter._spilling import backend_directory
from spanbatch.testing import OTLPReceiver

from tests.helpers import balanced, end_spans, provider_with, wait_until
from tests.helpers.spill import spill_files, spilling_exporter

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_request_refused_for_its_size_is_dropped_not_spilled_and_later_ones_go_to_the_backend(
    protocol: str, tmp_path: Path, shutdown_later: Callable[[Any], Any]
) -> None:
    with OTLPReceiver(protocol, max_request_bytes=20_000) as rx:
        processor = shutdown_later(spanbatch.BatchSpanProcessor(spilling_exporter(rx, tmp_path)))
        tracer = provider_with(processor).get_tracer("t")
        with tracer.start_as_current_span("big") as span:
            span.set_attribute("blob", "x" * 50_000)
        assert processor.force_flush(30_000)
        small = end_spans(provider_with(processor), 10, "small")
        assert processor.force_flush(30_000)
        stats = processor.stats()
        assert rx.span_ids() == small
    assert (stats.spilled, stats.exported, stats.dropped["export_failed"]) == (0, 10, 1)
    assert balanced(stats)
    assert spill_files(tmp_path) == []


@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize("status", [400, 500])
def test_a_replay_the_backend_answers_with_what_the_stock_exporter_would_not_retry_is_rejected(
    protocol: str, status: int, tmp_path: Path
) -> None:
    with OTLPReceiver(protocol) as rx:
        exporter = spilling_exporter(rx, tmp_path)
        try:
            rx.set_behaviour("status", status=status)
            assert exporter._send_spilled(b"") is Sent.REJECTED
            rx.set_behaviour("status", status=503)
            assert exporter._send_spilled(b"") is Sent.RETRY_LATER
            # No answer within the timeout may be this file's doing (a large request a slow backend never finishes):
            # busy, so that it is passed over after a few and cannot hold the newer files up for good.
            rx.set_behaviour("hang")
            assert exporter._send_spilled(b"") is Sent.RETRY_LATER
            rx.set_behaviour("down")  # no answer at all
            # gRPC, on a loaded machine: the first call after the hang may still end as busy (once in a suite run with
            # three workers on 2 cores); the channel tells it cannot connect by the next.
            assert wait_until(lambda: exporter._send_spilled(b"") is Sent.UNREACHABLE, 10)
            rx.set_behaviour("ok")
            assert wait_until(lambda: exporter._send_spilled(b"") is Sent.DELIVERED, 30)  # gRPC: once reconnected
        finally:
            exporter.shutdown()


def test_a_file_answered_busy_while_newer_ones_deliver_is_passed_over_and_kept(tmp_path: Path) -> None:
    # Busy (RETRY_LATER) is no verdict on the file: a backend behind a load balancer answers it at random. Only a
    # refusal (REJECTED) or a file that does not check out is moved aside.
    store = SpillStore(tmp_path, 1 << 20)
    assert store.write(b"poison", 1)
    delivered: list[bytes] = []

    def send(data: bytes) -> Sent:
        if data == b"poison":
            return Sent.RETRY_LATER
        delivered.append(data)
        return Sent.DELIVERED

    written = []
    for n in range(10):  # a request spilled now and then behind it, by a backend that takes requests
        written.append(b"good%d" % n)
        assert store.write(written[-1], 1)
        store.replay(send)
    assert delivered[-7:] == written[-7:]
    assert [path.read_bytes()[-6:] for path in store.pending()] == [b"poison"]
    assert not (tmp_path / CORRUPT_DIR).exists()
    assert store.counts().corrupt == 0


def test_a_backend_that_stays_down_never_gets_its_files_quarantined(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, 1 << 20)
    for n in range(3):
        store.write(b"file%d" % n, 1)
    tried: list[bytes] = []

    def down(data: bytes) -> Sent:
        tried.append(data)
        return Sent.RETRY_LATER

    for _ in range(50):
        assert store.replay(down) == 0
    assert len(store.pending()) == 3
    assert store.counts().corrupt == 0
    assert len(tried) == 50  # one probe a pass, never every file

    def up(data: bytes) -> Sent:
        tried.append(data)
        return Sent.DELIVERED

    assert store.replay(up) == 3
    assert store.pending() == []


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_exporters_with_other_headers_never_replay_each_others_requests(
    protocol: str, tmp_path: Path, shutdown_later: Callable[[Any], Any]
) -> None:
    with OTLPReceiver(protocol) as rx:
        rx.set_behaviour("down")
        ids = {}
        for tenant in ("a", "b"):
            processor = spanbatch.BatchSpanProcessor(spilling_exporter(rx, tmp_path, headers={"x-tenant": tenant}))
            ids[tenant] = end_spans(provider_with(processor), 10, tenant)
            processor.shutdown()
            assert processor.stats().spilled == 10
        assert len({path.parent for path in spill_files(tmp_path)}) == 2
        rx.set_behaviour("ok")
        # Kept: an exporter nobody holds any more stops its replays (see test_long_lived).
        replaying = shutdown_later(
            spanbatch.BatchSpanProcessor(spilling_exporter(rx, tmp_path, headers={"x-tenant": "a"}))
        )
        assert rx.wait_for_spans(10, timeout=30)
        assert wait_until(lambda: len(spill_files(tmp_path)) == 1, 10)
        assert rx.span_ids() == ids["a"]
        assert wait_until(lambda: replaying.span_exporter.spill_counts().replayed == 10, 10)


def test_the_directory_of_a_backend_depends_on_what_makes_its_requests_differ(tmp_path: Path) -> None:
    base = backend_directory(tmp_path, "http", "http://h/v1/traces")
    assert base == backend_directory(tmp_path, "http", "http://h/v1/traces", {"User-Agent": "any/2"}, "none")
    assert base != backend_directory(tmp_path, "http", "http://h/v1/traces", {"authorization": "k"})
    assert base != backend_directory(tmp_path, "http", "http://h/v1/traces", (), "gzip")
    assert backend_directory(tmp_path, "grpc", "h", [("a", "1"), ("b", "2")]) == backend_directory(
        tmp_path, "grpc", "h", {"B": "2", "A": "1"}
    )


def test_a_grpc_exporter_shutdown_keeps_to_its_timeout_with_a_replay_hanging(tmp_path: Path) -> None:
    with OTLPReceiver("grpc") as rx:
        rx.set_behaviour("hang")
        exporter = spilling_exporter(rx, tmp_path, timeout=20)
        spiller = exporter._spiller
        probing = threading.Event()
        send_once = spiller._send_once

        def noting(payload: bytes) -> Sent:
            probing.set()
            return send_once(payload)

        spiller._send_once = noting
        assert spiller.spill(b"", 0)  # an empty request: the replay thread probes the hanging backend with it
        assert probing.wait(10)
        started = time.monotonic()
        exporter.shutdown(timeout_millis=200)
        # Not a speed test: the bound is what shutdown was given, with a wide margin, and well under the 5 s
        # the replay used to be waited for whatever the timeout.
        assert time.monotonic() - started < 3
        rx.set_behaviour("ok")


def _resetting_server(stop: threading.Event) -> tuple[socket.socket, threading.Thread]:
    """A backend that reads each whole request, then resets the connection (a body that crashes it, a proxy
    that drops it): the request reached it, so the failure may be the file's own."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, body = data.split(b"\r\n\r\n", 1)
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                while len(body) < length:
                    body += conn.recv(65536)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.parametrize("transport", ["native", "stock"])
def test_a_replay_the_backend_resets_after_reading_it_is_busy_not_unreachable(transport: str, tmp_path: Path) -> None:
    # Unreachable (no verdict on the file, never passed over) only where the request never reached the backend:
    # a file the backend resets on must be passed over after a few, or it holds every newer file up for good.
    from spanbatch.exporter import OTLPSpanExporter  # noqa: PLC0415

    session = requests.Session() if transport == "stock" else None  # a session of its own keeps the stock transport
    stop = threading.Event()
    server, thread = _resetting_server(stop)
    exporter = OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{server.getsockname()[1]}/v1/traces", spill_dir=tmp_path, timeout=2, session=session
    )
    try:
        assert exporter._send_spilled(b"x" * 1000) is Sent.RETRY_LATER
    finally:
        exporter.shutdown()
        stop.set()
        thread.join(5)
        server.close()


@pytest.mark.parametrize(
    ("said", "sent"),
    [
        ("io: Connection refused (os error 111)", Sent.UNREACHABLE),
        ("io: Verbindungsaufbau abgelehnt (os error 111)", Sent.UNREACHABLE),  # an app that set a German locale
        ("io: No route to host (os error 113)", Sent.UNREACHABLE),  # a collector host down on the local subnet
        ("io: Network is unreachable (os error 101)", Sent.UNREACHABLE),
        ("io: failed to lookup address information: Name or service not known", Sent.UNREACHABLE),
        ("io: Connection reset by peer (os error 104)", Sent.RETRY_LATER),
        ("timeout: global", Sent.RETRY_LATER),
    ],
)
def test_the_native_transports_errors_tell_a_backend_not_reached_in_any_locale(said: str, sent: Sent) -> None:
    # Rust words the OS's error in the process's locale, and always adds its number.
    from spanbatch._core import TransportConnectionError  # noqa: PLC0415
    from spanbatch.exporter._http import _no_answer  # noqa: PLC0415

    assert _no_answer(TransportConnectionError(said)) is sent
