"""spanbatch's OTLP/HTTP span exporter against the edges its users configure and the receivers that misbehave.

Each case is one the stock exporter (``requests``) handles sanely: the Rust transport must do the same.
The receiver here is a raw socket server, so that a reply can be exactly as broken as the case needs.
"""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanbatch.exporter import OTLPSpanExporter

pytestmark = pytest.mark.timeout(30)

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

# Answers one request (its head and body) on a connection; False closes the connection after it.
Reply = Callable[[socket.socket, bytes, bytes], "bool | None"]


class RawReceiver:
    """An HTTP/1.1 server on 127.0.0.1 that answers each request with ``reply`` and keeps what it got."""

    def __init__(self, reply: Reply) -> None:
        self._reply = reply
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.requests: list[tuple[bytes, bytes]] = []
        self._connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self._connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        pending = b""
        try:
            while True:
                while b"\r\n\r\n" not in pending:
                    data = connection.recv(65536)
                    if not data:
                        return
                    pending += data
                head, _, rest = pending.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.partition(b":")[2])
                        for line in head.split(b"\r\n")[1:]
                        if line.partition(b":")[0].strip().lower() == b"content-length"
                    ),
                    0,
                )
                while len(rest) < length:
                    data = connection.recv(65536)
                    if not data:
                        return
                    rest += data
                body, pending = rest[:length], rest[length:]
                self.requests.append((head, body))
                if self._reply(connection, head, body) is False:
                    connection.close()
                    return
        except OSError:
            return

    def heads(self) -> list[str]:
        return [head.decode("latin-1") for head, _ in self.requests]

    def close(self) -> None:
        self._listener.close()
        for connection in self._connections:
            connection.close()


@pytest.fixture
def receiver_with() -> Iterator[Callable[[Reply], RawReceiver]]:
    made: list[RawReceiver] = []

    def make(reply: Reply) -> RawReceiver:
        made.append(RawReceiver(reply))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def finished_spans() -> tuple[ReadableSpan, ...]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("edges").start_as_current_span("one"):
        pass
    return memory.get_finished_spans()


def ok(connection: socket.socket, head: bytes, body: bytes) -> None:
    connection.sendall(OK)


def header(head: str, name: str) -> str | None:
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return None


# -- headers the user gives -------------------------------------------------------------------------------


def test_a_header_value_given_as_bytes_is_sent_as_the_stock_exporter_sends_it(receiver_with):
    # requests takes bytes header values; the Rust transport raised TypeError out of export().
    receiver = receiver_with(ok)
    exporter = OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces", headers={"x-tenant": b"acme"}, timeout=5
    )
    try:
        assert exporter.export(finished_spans()) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert [header(head, "x-tenant") for head in receiver.heads()] == ["acme"]


def test_a_header_value_of_another_type_fails_the_export_without_raising(receiver_with, caplog):
    # The stock exporter logs requests' InvalidHeader and returns FAILURE; export() must never raise.
    receiver = receiver_with(ok)
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces", headers={"x-n": 5}, timeout=5)
    try:
        assert exporter.export(finished_spans()) is SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert "Failed to export spans batch" in caplog.text


def test_a_header_value_outside_ascii_is_sent_as_the_stock_exporter_sends_it(receiver_with):
    # requests sends a str header value as latin-1 ('é' is one byte, 0xE9); the Rust transport sent UTF-8 (two).
    receiver = receiver_with(ok)
    exporter = OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces", headers={"x-tenant": "café"}, timeout=5
    )
    try:
        assert exporter.export(finished_spans()) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert [header(head, "x-tenant") for head in receiver.heads()] == ["café"]


def test_a_header_value_requests_refuses_fails_the_export_as_with_stock(receiver_with, caplog):
    # requests refuses a value with leading whitespace (InvalidHeader): the stock exporter sends nothing.
    receiver = receiver_with(ok)
    exporter = OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces", headers={"x-tenant": " acme"}, timeout=5
    )
    try:
        assert exporter.export(finished_spans()) is SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert receiver.heads() == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("x(tenant)", "acme"),
        ("x tenant", "acme"),
        ("x/tenant", "acme"),
        ("x-tenant", "ac\x01me"),
        ("x-tenant", "acme\x7f"),
    ],
)
def test_a_header_requests_sends_but_http_tokens_exclude_is_sent_as_stock_sends_it(receiver_with, name, value):
    # requests sends any name without a colon or whitespace at its start, and control characters inside a value;
    # OTEL_EXPORTER_OTLP_HEADERS percent-decodes to them ('x%28tenant%29=acme', 'x-tenant=ac%01me'). The Rust
    # transport's header types refused them: every export failed, unsent, where the stock exporter's succeeded.
    receiver = receiver_with(ok)
    exporter = OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces", headers={name: value}, timeout=5
    )
    try:
        assert exporter.export(finished_spans()) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert [header(head, name) for head in receiver.heads()] == [value]


# -- endpoints --------------------------------------------------------------------------------------------


def test_a_percent_encoded_password_in_the_endpoint_is_sent_decoded(receiver_with):
    # A password with an '@' must be written %40 in a URL; requests decodes it for the Basic credentials.
    receiver = receiver_with(ok)
    exporter = OTLPSpanExporter(endpoint=f"http://user:p%40ss@127.0.0.1:{receiver.port}/v1/traces", timeout=5)
    try:
        assert exporter.export(finished_spans()) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    expected = "Basic " + base64.b64encode(b"user:p@ss").decode()
    assert [header(head, "authorization") for head in receiver.heads()] == [expected]


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("/v1/my traces", "/v1/my%20traces"),
        ("/v1/trac\u00e9s", "/v1/trac%C3%A9s"),
        ("/v1/traces?t=a b", "/v1/traces?t=a%20b"),
        ("/otlp/../v1/traces", "/v1/traces"),
        ("/./v1/traces", "/v1/traces"),
    ],
)
def test_an_endpoint_path_is_sent_as_the_stock_exporter_sends_it(receiver_with, path, sent):
    # requests quotes what a request line cannot carry; the Rust transport refused the URL (or sent raw UTF-8).
    # It also removes '.' and '..' segments, which the Rust transport sent as they were: a Go collector answers
    # such a path with a redirect to the clean one, which the OTLP client counts as accepted.
    receiver = receiver_with(ok)
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{receiver.port}{path}", timeout=5)
    try:
        assert exporter.export(finished_spans()) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert [head.split("\r\n")[0] for head in receiver.heads()] == [f"POST {sent} HTTP/1.1"]


# -- receivers that misbehave -----------------------------------------------------------------------------


def test_a_success_with_a_body_over_the_response_limit_is_a_success(receiver_with):
    # The backend accepted the batch; a large body (an error page, a proxy's banner) changes nothing of that.
    big = 3 << 20

    def accepted_with_a_big_body(connection: socket.socket, head: bytes, body: bytes) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % big + b"x" * big)

    receiver = receiver_with(accepted_with_a_big_body)
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces", timeout=5)
    try:
        assert exporter.export(finished_spans()) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert len(receiver.requests) == 1


def test_a_response_cut_off_mid_body_is_not_sent_again(receiver_with):
    # The status line said 200: the backend has the batch. requests reports the broken body as an error
    # its client does not retry (one request); the Rust transport called it a connection error, and the
    # client sent the same batch again and again until its deadline.
    def cut_off(connection: socket.socket, head: bytes, body: bytes) -> bool:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        return False

    receiver = receiver_with(cut_off)
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces", timeout=3)
    try:
        exporter.export(finished_spans())
    finally:
        exporter.shutdown()
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n",  # a control character in a value
        b"HTTP/1.1 200 OK\r\nX(A): b\r\nContent-Length: 0\r\n\r\n",  # a name that is not a token
        b"HTTP/1.1 200 OK\r\nX-A: a\r\n  folded\r\nContent-Length: 0\r\n\r\n",  # an obsolete folded line
        b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",  # a length that is not a number
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",  # two lengths
        b"HTTP/1.1 100 Continue\r\nX-A: b\r\n\r\n" + OK,  # a 100 with headers
    ],
)
def test_an_answer_with_malformed_headers_is_not_sent_again(receiver_with, answer):
    # The backend read the batch and answered with a status line; requests reads what follows leniently (one
    # request; the stock exporter counts most of these a success). The Rust transport took its parser's refusal
    # of the headers for a connection error, and the client sent the batch again: 4 requests within this 2 s
    # timeout, 8 at the default 10 s.
    def malformed(connection: socket.socket, head: bytes, body: bytes) -> bool:
        connection.sendall(answer)
        return False

    receiver = receiver_with(malformed)
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces", timeout=2)
    try:
        exporter.export(finished_spans())
    finally:
        exporter.shutdown()
    assert len(receiver.requests) == 1


# -- the environment requests reads at each request -------------------------------------------------------


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
def test_an_https_proxy_variable_leaves_a_plain_http_endpoint_direct(receiver_with, monkeypatch, variable):
    # requests proxies http:// only through http_proxy/all_proxy; the Rust transport took HTTPS_PROXY for it
    # too, and tunnelled the request through that proxy (here: one that refuses it).
    receiver = receiver_with(ok)
    proxy = receiver_with(lambda connection, head, body: connection.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n"))
    monkeypatch.setenv(variable, f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)  # a machine's exemption for 127.0.0.1 would hide a proxied send
    monkeypatch.delenv("no_proxy", raising=False)
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces", timeout=5)
    try:
        assert exporter.export(finished_spans()) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert (len(receiver.requests), proxy.requests) == (1, [])


def test_an_http_proxy_gets_the_request_as_a_forward_proxy_does(receiver_with, monkeypatch):
    # requests sends a plain-HTTP request to its proxy in absolute form; the Rust transport asked for a
    # CONNECT tunnel, which forward proxies refuse to ports other than 443 by default.
    proxy = receiver_with(ok)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    exporter = OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces", timeout=5)
    try:
        assert exporter.export(finished_spans()) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert [head.split("\r\n")[0] for head in proxy.heads()] == ["POST http://127.0.0.1:9/v1/traces HTTP/1.1"]


def test_netrc_credentials_for_the_endpoint_are_sent_as_requests_sends_them(receiver_with, monkeypatch, tmp_path):
    receiver = receiver_with(ok)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login user password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces", timeout=5)
    try:
        assert exporter.export(finished_spans()) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    expected = "Basic " + base64.b64encode(b"user:secret").decode()
    assert [header(head, "authorization") for head in receiver.heads()] == [expected]


def test_an_answer_with_malformed_headers_is_not_spilled_and_sent_again(receiver_with, tmp_path):
    # The backend has the batch and answered it (requests takes its 200: one request, SUCCESS). Not an answer the
    # backend could give better later: spilled, the replay thread sends it again and again.
    def malformed(connection: socket.socket, head: bytes, body: bytes) -> bool:
        connection.sendall(b"HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n")
        return False

    receiver = receiver_with(malformed)
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces", timeout=2, spill_dir=tmp_path)
    try:
        exporter.export(finished_spans())
        spilled = exporter.spill_counts()
        threading.Event().wait(2.0)  # the replay thread's first probes come within 0.5 s and 1.5 s
    finally:
        exporter.shutdown()
    assert spilled is not None
    assert spilled.spilled == 0
    assert len(receiver.requests) == 1


def test_a_spilled_request_whose_replay_is_answered_with_malformed_headers_is_sent_once(receiver_with, tmp_path):
    # The live export is answered 503 until it gives up and spills; the replay's answer has a header the Rust parser
    # refuses: the backend has the request, so the file is moved aside, not probed again.
    malformed_now = threading.Event()

    def busy_then_malformed(connection: socket.socket, head: bytes, body: bytes) -> bool:
        if malformed_now.is_set():
            connection.sendall(b"HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n")
        else:
            connection.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        return False

    receiver = receiver_with(busy_then_malformed)
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces", timeout=1, spill_dir=tmp_path)
    try:
        exporter.export(finished_spans())
        spilled = exporter.spill_counts()
        live_attempts = len(receiver.requests)
        malformed_now.set()
        threading.Event().wait(3.0)  # the replay thread's probes come within 0.5 s, 1.5 s, then more often than 1 s
        counts = exporter.spill_counts()
    finally:
        exporter.shutdown()
    assert spilled is not None
    assert spilled.spilled == 1
    assert len(receiver.requests) - live_attempts == 1
    assert counts is not None
    assert counts.replayed == 0
