"""spanbatch's OTLP/HTTP span exporter against the edges its users configure and the receivers that misbehave.

Each case is one the stock exporter (``requests``) handles sanely: the Rust transport must do the same.
The receiver here is a raw socket server, so that a reply can be exactly as broken as the case needs.
"""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

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


# -- what the user configures: headers and endpoints ------------------------------------------------------


def header_named(name: str) -> Callable[[str], str | None]:
    return lambda head: header(head, name)


def request_line(head: str) -> str:
    return head.split("\r\n", maxsplit=1)[0]


@dataclass(frozen=True)
class Configured:
    """An exporter configured so (``{port}`` in the endpoint is the receiver's), what its export returns and what the
    receiver sees of each request it gets (``seen``: a header's value, or the request line)."""

    headers: Mapping[str, object] | None = None
    endpoint: str = "http://127.0.0.1:{port}/v1/traces"
    result: SpanExportResult = SpanExportResult.SUCCESS
    seen: Callable[[str], str | None] = request_line
    sent: tuple[str, ...] = ()


@pytest.mark.parametrize(
    "case",
    [
        # requests takes bytes header values; the Rust transport raised TypeError out of export().
        pytest.param(
            Configured(headers={"x-tenant": b"acme"}, seen=header_named("x-tenant"), sent=("acme",)), id="bytes-value"
        ),
        # The stock exporter logs requests' InvalidHeader and returns FAILURE; export() must never raise.
        pytest.param(Configured(headers={"x-n": 5}, result=SpanExportResult.FAILURE), id="int-value"),
        # requests sends a str header value as latin-1 ('é' is one byte, 0xE9); the Rust transport sent UTF-8 (two).
        pytest.param(
            Configured(headers={"x-tenant": "café"}, seen=header_named("x-tenant"), sent=("café",)), id="latin-1-value"
        ),
        # requests refuses a value with leading whitespace (InvalidHeader): the stock exporter sends nothing.
        pytest.param(Configured(headers={"x-tenant": " acme"}, result=SpanExportResult.FAILURE), id="leading-space"),
        # requests sends any name without a colon or whitespace at its start, and control characters inside a value;
        # OTEL_EXPORTER_OTLP_HEADERS percent-decodes to them ('x%28tenant%29=acme', 'x-tenant=ac%01me'). The Rust
        # transport's header types refused them: every export failed, unsent, where the stock exporter's succeeded.
        *(
            pytest.param(
                Configured(headers={name: value}, seen=header_named(name), sent=(value,)), id=f"{name!r}:{value!r}"
            )
            for name, value in [
                ("x(tenant)", "acme"),
                ("x tenant", "acme"),
                ("x/tenant", "acme"),
                ("x-tenant", "ac\x01me"),
                ("x-tenant", "acme\x7f"),
            ]
        ),
        # requests writes the body's own length over a Content-Length the user gave (OTEL_EXPORTER_OTLP_HEADERS
        # 'content-length=5'); the Rust transport sent the user's and failed every export, unsent.
        pytest.param(
            Configured(headers={"Content-Length": "5"}, sent=("POST /v1/traces HTTP/1.1",)), id="content-length"
        ),
        # A password with an '@' must be written %40 in a URL; requests decodes it for the Basic credentials.
        pytest.param(
            Configured(
                endpoint="http://user:p%40ss@127.0.0.1:{port}/v1/traces",
                seen=header_named("authorization"),
                sent=("Basic " + base64.b64encode(b"user:p@ss").decode(),),
            ),
            id="percent-encoded-password",
        ),
        # requests quotes what a request line cannot carry; the Rust transport refused the URL (or sent raw UTF-8).
        # It also removes '.' and '..' segments, which the Rust transport sent as they were: a Go collector answers
        # such a path with a redirect to the clean one, which the OTLP client counts as accepted.
        *(
            pytest.param(
                Configured(endpoint="http://127.0.0.1:{port}" + path, sent=(f"POST {sent} HTTP/1.1",)), id=path
            )
            for path, sent in [
                ("/v1/my traces", "/v1/my%20traces"),
                ("/v1/trac\u00e9s", "/v1/trac%C3%A9s"),
                ("/v1/traces?t=a b", "/v1/traces?t=a%20b"),
                ("/otlp/../v1/traces", "/v1/traces"),
                ("/./v1/traces", "/v1/traces"),
            ]
        ),
    ],
)
def test_an_export_configured_so_sends_what_the_stock_exporter_sends(receiver_with, caplog, case: Configured):
    receiver = receiver_with(ok)
    exporter = OTLPSpanExporter(endpoint=case.endpoint.format(port=receiver.port), headers=case.headers, timeout=5)
    try:
        assert exporter.export(finished_spans()) is case.result
    finally:
        exporter.shutdown()
    assert [case.seen(head) for head in receiver.heads()] == list(case.sent)
    # A failure is logged as the stock exporter logs it, and only a failure.
    failed = case.result is SpanExportResult.FAILURE
    assert ("Failed to export spans batch" in caplog.text) == failed, caplog.text


def test_an_expect_100_continue_header_does_not_hold_the_body_back(receiver_with):
    # requests sends the body at once; the Rust transport waited a second for a "100 Continue" that an OTLP
    # receiver never sends, so an export with a shorter timeout failed where the stock exporter's succeeded.
    receiver = receiver_with(ok)
    exporter = OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces", headers={"Expect": "100-continue"}, timeout=0.8
    )
    try:
        assert exporter.export(finished_spans()) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert len(receiver.requests) == 1


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


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n",  # a control character in a value
        b"HTTP/1.1 200 OK\r\nX(A): b\r\nContent-Length: 0\r\n\r\n",  # a name that is not a token
        b"HTTP/1.1 200 OK\r\nX-A: a\r\n  folded\r\nContent-Length: 0\r\n\r\n",  # an obsolete folded line
        b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",  # a length that is not a number
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",  # two lengths
        b"HTTP/1.1 100 Continue\r\nX-A: b\r\n\r\n" + OK,  # a 100 with headers
        # The status line said 200 and the body is cut off: requests reports the broken body as an error its client
        # does not retry; the Rust transport called it a connection error, and the client sent the same batch again
        # and again until its deadline.
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc",
    ],
)
def test_an_answer_with_malformed_headers_or_a_cut_off_body_is_not_sent_again(receiver_with, answer):
    # The backend read the batch and answered with a status line: it has the batch. requests reads what follows
    # leniently (one request; the stock exporter counts most of these a success). The Rust transport took its
    # parser's refusal of the headers for a connection error, and the client sent the batch again: 4 requests
    # within this 2 s timeout, 8 at the default 10 s.
    def answered(connection: socket.socket, head: bytes, body: bytes) -> bool:
        connection.sendall(answer)
        return False

    receiver = receiver_with(answered)
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


@pytest.mark.parametrize(
    ("busy_at_first", "spilled", "probing_seconds"),
    [
        # The live export is answered so: requests takes its 200 (one request, SUCCESS). Not an answer the backend
        # could give better later: spilled, the replay thread sent it again and again. Its first probes come within
        # 0.5 s and 1.5 s.
        pytest.param(False, 0, 2.0, id="live"),
        # The live export is answered 503 until it gives up and spills; the replay is answered so: the file is moved
        # aside, not probed again. The probes come within 0.5 s, 1.5 s, then more often than 1 s.
        pytest.param(True, 1, 3.0, id="replayed"),
    ],
)
def test_a_request_answered_with_malformed_headers_is_not_sent_again_from_the_spill_directory(
    receiver_with, tmp_path, caplog, *, busy_at_first, spilled, probing_seconds
):
    # A header the Rust parser refuses: the backend has the request it answered so.
    busy = threading.Event()
    if busy_at_first:
        busy.set()
    answered_malformed: list[bytes] = []

    def busy_or_malformed(connection: socket.socket, head: bytes, body: bytes) -> bool:
        if busy.is_set():
            connection.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        else:
            answered_malformed.append(head)
            connection.sendall(b"HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n")
        return False

    receiver = receiver_with(busy_or_malformed)
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{receiver.port}/v1/traces", timeout=1, spill_dir=tmp_path)
    try:
        exporter.export(finished_spans())
        after_export = exporter.spill_counts()
        busy.clear()
        threading.Event().wait(probing_seconds)
        after_probes = exporter.spill_counts()
    finally:
        exporter.shutdown()
    assert after_export is not None
    assert after_export.spilled == spilled
    assert after_probes is not None
    assert after_probes.replayed == 0
    assert len(answered_malformed) == 1
    # A spilled file is moved aside for what happened: not a refusal, an answer it could not read from a backend that
    # may have it.
    moved = [r.getMessage() for r in caplog.records if r.name == "spanbatch" and "moved to corrupt/" in r.getMessage()]
    assert len(moved) == spilled
    assert all("its answer could not be read (the backend may have it)" in line for line in moved), moved
