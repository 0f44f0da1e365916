"""OTLP/HTTP (protobuf) exporters: the stock exporters' transport, retries and settings, Rust encoding.

``RustEncodedHTTP`` is what the span and log exporters share; the log exporter is in ``_http_logs``.

Private parts of the stock exporter this relies on (checked by the tests, 1.45.2):
``_OTLPHTTPClient`` and its ``export(bytes)`` / ``_compress(bytes) -> bytes`` / ``_compression`` /
``_endpoint`` / ``_headers`` / ``_timeout`` / ``_transport`` / ``_shutdown_event``, ``_is_retryable``,
the transport classes in ``opentelemetry.exporter.http.transport``, the exporter's ``_client``, ``_endpoint``,
``_metrics.export_operation``, ``_max_request_size`` and ``_shutdown``, ``RequestsHTTPTransport._session``, and
``_common._is_request_too_large`` / ``RequestPayloadTooLargeError``.
"""

from __future__ import annotations

import copy
import errno
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

try:
    from opentelemetry.exporter.otlp.common import http as _http
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http import trace_exporter as _stock
    from opentelemetry.exporter.otlp.proto.http._common import RequestPayloadTooLargeError, _is_request_too_large
except ImportError as error:  # the stock exporter before 1.45 has another shape, without these hooks
    raise ImportError(
        "spanbatch.exporter's OTLP/HTTP exporters need opentelemetry-exporter-otlp-proto-http>=1.45.2 "
        "(Python >= 3.10): pip install 'spanbatch[otlp-http]'"
    ) from error
from opentelemetry.exporter.http.transport._base import BaseHTTPTransport
from opentelemetry.exporter.http.transport._requests import RequestsHTTPTransport
from opentelemetry.exporter.otlp.common._exporter_metrics import ExporterMetricsT, NoOpExporterMetrics
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE
from requests.exceptions import InvalidHeader
from requests.utils import check_header_validity, get_environ_proxies, get_netrc_auth, requote_uri, select_proxy

from spanbatch import _settings
from spanbatch._core import LogEncoder, LogRequest, SendProgress, SpanEncoder, SpanRequest, compress
from spanbatch._encoding import Batch, read_batch
from spanbatch._export_clock import paced_progress
from spanbatch._setting import read
from spanbatch._spill import Sent, SpillCounts
from spanbatch.exporter import _limits
from spanbatch.exporter._cutoff import Cutoff
from spanbatch.exporter._deadline import Deadline
from spanbatch.exporter._declared import DeclaredEncoder
from spanbatch.exporter._session_identity import http_identity
from spanbatch.exporter._spilling import Spiller, spiller_for, spills_of
from spanbatch.exporter._transport import NativeHTTPResult, NativeHTTPTransport, NotSentError, may_have_arrived
from spanbatch.exporter._unsent import count_failed, count_left_out, count_unsent

if TYPE_CHECKING:
    import requests
    from opentelemetry.exporter.http.transport._base import BaseHTTPTransport

# The stock exporter's logger: the lines below are its lines, for the same events.
logger = logging.getLogger(_stock.__name__)


class _RustCompressingClient(_http._OTLPHTTPClient):
    """The stock HTTP client, compressing request bodies in Rust without holding the GIL.

    With a spill directory, a request that still fails after the client's retries (or that
    comes while its backend is known to be down) is stored on disk and reported as sent. A batch
    cut in parts comes here a part at a time: each part is spilled on its own (with the item count
    its sender gives, see ``Spiller.sending``), and counts as accepted, so a retry of the batch never
    sends it again.
    """

    _spiller: Spiller | None = None

    def _compress(self, serialized_data: bytes) -> bytes:
        if self._compression is _http.Compression.NONE:
            return serialized_data
        return compress(serialized_data, self._compression.value)

    def export(self, data: bytes) -> _http._ExportResult:
        spiller = self._spiller
        if spiller is None:
            return super().export(data)
        if not spiller.down and not spiller.cut_off():
            result = super().export(data)
            # Only what a later attempt could deliver: a request the backend refused (a 400) stays refused, and one
            # that may have arrived must not arrive twice.
            if (
                result.success
                or (result.status_code is not None and not _http._is_retryable(result.status_code))
                or may_have_arrived(result.error)
            ):
                return result
        if spiller.spill(data, spiller.items_sending()):
            return _http._ExportResult(True, None, "spilled", None)
        return _http._ExportResult(False, None, "spill failed", None)


# A request that never reached the backend: the OS's errors (an OSError's errno; in Rust's text, "(os error N)",
# whose words follow the locale), and the transports' own English for a failed name lookup or connection.
_NOT_REACHED_ERRNOS = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)
_NOT_REACHED = (
    *(f"(os error {number})" for number in _NOT_REACHED_ERRNOS),
    "failed to lookup address",
    "failed to resolve",
    "failed to establish a new connection",
)


def _no_answer(error: BaseException | None) -> Sent:
    """A replay probe without an answer. The backend not reached (refused, its address not found): it is down, which
    says nothing of the file. Anything else (a reset after it read the request, out of time) may be the file's
    doing (a body that crashes the backend, a large request a slow one never finishes): busy, passed over after a
    few rather than holding every newer file up for good."""
    said: list[str] = []
    while error is not None and len(said) < 8:  # the cause chain, as requests wraps urllib3's errors
        if isinstance(error, OSError) and error.errno in _NOT_REACHED_ERRNOS:
            return Sent.UNREACHABLE
        said.append(str(error).lower())
        error = error.__cause__ or error.__context__
    return Sent.UNREACHABLE if any(text in message for message in said for text in _NOT_REACHED) else Sent.RETRY_LATER


class RustEncodedHTTP:
    """What spanbatch's OTLP/HTTP exporters add to a stock exporter (a base listed before it): requests
    encoded by the Rust encoder, sent from Rust where the stock transport would do the same.

    ``max_export_batch_bytes`` (keyword; ``SPANBATCH_MAX_EXPORT_BATCH_BYTES``; default
    ``max_request_size``, which also bounds it): a batch whose request would be larger is sent
    as several requests that each fit, each sent once; an item (span or log record) larger on its
    own is left out (warned about; spanbatch's processors count it as ``too_large``). The stock
    exporter drops such a batch whole.
    """

    # What each subclass names: its encoder, its signal as the stock messages word it, its result enum, its
    # stock logger.
    _encoder_class: ClassVar[type[SpanEncoder | LogEncoder]]
    _signal: ClassVar[str]
    _results: ClassVar[Any]
    _logger: ClassVar[logging.Logger]
    # The stock exporter's own attributes.
    _shutdown: bool
    _client: _http._OTLPHTTPClient
    _metrics: ExporterMetricsT
    _max_request_size: int
    _endpoint: str

    def __init__(  # noqa: PLR0917 -- the stock exporter's positional parameters, for a drop-in
        self,
        endpoint: str | None = None,
        certificate_file: str | None = None,
        client_key_file: str | None = None,
        client_certificate_file: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        compression: Compression | _http.Compression | None = None,
        session: requests.Session | None = None,
        *,
        max_request_size: int | None = None,
        meter_provider: MeterProvider | None = None,
        max_export_batch_bytes: int | None = None,
        spill_dir: str | os.PathLike[str] | None = None,
        spill_max_bytes: int | None = None,
        spill_key: str | None = None,
        _transport: BaseHTTPTransport | None = None,
    ) -> None:
        requested = _limits.checked(max_export_batch_bytes)  # before the stock constructor opens anything
        # Passed on only when given: the stock overloads take ``_transport`` without certificate files.
        given: dict[str, Any] = {} if _transport is None else {"_transport": _transport}
        super().__init__(  # type: ignore[call-arg]  # the stock exporter's, next in the MRO
            endpoint,
            certificate_file,
            client_key_file,
            client_certificate_file,
            headers,
            timeout,
            compression,
            session,
            max_request_size=max_request_size,
            meter_provider=meter_provider,
            **given,
        )
        if not self._client._timeout > 0:  # 0, negative or NaN: requests refuses it, so the stock exporter fails too
            self._logger.warning(
                "timeout=%r is not a positive number of seconds: every export fails without sending, as the stock"
                " exporter's does (OTEL_EXPORTER_OTLP_TIMEOUT, or the exporter's timeout argument).",
                self._client._timeout,
            )
        # The stock client refuses a request over max_request_size (when positive): no part may be larger.
        stock_limit = self._max_request_size if self._max_request_size > 0 else None
        limit = _limits.max_export_batch_bytes(requested, stock_limit)
        if limit is not None and stock_limit is not None:
            limit = min(limit, stock_limit)
        self._encoder = self._encoder_class(limit)
        # Same object, same settings; only ``_compress`` changes (see _RustCompressingClient).
        if type(self._client) is _http._OTLPHTTPClient:
            self._client.__class__ = _RustCompressingClient
        # Read from the stock transport as it is now (Rust's may take its place below), if a spill directory is set.
        identity = partial(http_identity, self._client._transport, self._endpoint, self._client._headers)
        # A transport the caller gave is theirs to keep: requests go through it, not from Rust.
        self._native = None if _transport is not None else native_transport_for(self, session)
        # The replay thread's own connections, made when first needed: a pool shared with the exports would hand
        # each the other's sockets, which under gevent belong to the hub of the thread that made them. A session or
        # transport the caller gave is theirs: shared (None).
        self._new_replay_transport = replay_transport_maker(self, session, _transport)
        self._replay_transport: BaseHTTPTransport | None = None
        self._cutoff = Cutoff(self._client._shutdown_event)
        if self._native is not None:
            self._cutoff.tell(self._native.end_sends_by)
        self._spiller = spiller_for(
            spill_dir,
            spill_max_bytes,
            protocol="http",
            endpoint=self._endpoint,
            identity=identity,  # what replays send as (the headers with the compression, already in them)
            compression=self._client._compression.value,
            spill_key=spill_key,
            send_once=self._send_spilled,
            cutoff=self._cutoff,
        )
        if isinstance(self._client, _RustCompressingClient):
            self._client._spiller = self._spiller

    def _send_spilled(self, payload: bytes) -> Sent:
        """One attempt at a stored request, from the replay thread: on a transport of its own, but the caller's."""
        client = self._client
        transport = client._transport
        if self._new_replay_transport is not None:
            if self._replay_transport is None:
                self._replay_transport = self._new_replay_transport()
                if isinstance(self._replay_transport, NativeHTTPTransport):  # a replay waiting at exit ends too
                    self._cutoff.tell(self._replay_transport.end_sends_by)
            transport = self._replay_transport
        try:
            body = client._compress(payload)
        except Exception:  # this file's, not the backend's: tried again, passed over after a few
            return Sent.RETRY_LATER
        try:
            result = transport.request(
                "POST", client._endpoint, headers=client._headers, data=body, timeout=client._timeout
            )
        except Exception as error:  # a transport of the caller's may raise for no answer
            return _no_answer(error)
        status = result.status_code
        if may_have_arrived(result.error):  # sent again, the backend could have it twice
            return Sent.UNCONFIRMED
        if status is None:  # no answer: the transport's result says why
            return _no_answer(result.error)
        if _http._is_retryable(status):  # an answer the stock client retries: busy
            return Sent.RETRY_LATER
        # As the live export: any other answer (401, 403 and 413 included) stays what it is (see the README).
        return Sent.DELIVERED if 200 <= status < 400 else Sent.REJECTED

    def spill_counts(self) -> SpillCounts | None:
        """What the spill directory did in this process (None: no spill directory)."""
        return None if self._spiller is None else self._spiller.counts()

    def shutdown(self) -> None:
        if self._spiller is not None:
            self._spiller.stop()
        if self._replay_transport is not None:  # the stock shutdown closes the exports' transport
            self._replay_transport.close()
        super().shutdown()  # type: ignore[misc]  # the stock exporter's, next in the MRO

    def _credential_provider_set(self) -> bool:
        """Whether the stock exporter loaded its session from a credential provider named in a variable."""
        return bool(read(_settings.HTTP_CREDENTIAL_PROVIDER))

    @property
    def max_export_batch_bytes(self) -> int | None:
        """No request this exporter sends is larger, serialized before compression (None: no limit)."""
        return self._encoder.max_request_bytes

    @property
    def sends_natively(self) -> bool:
        """Whether requests go out from Rust (plain ``http://``, no session) rather than through requests."""
        return self._native is not None

    def _export_batches(self, batches: Sequence[Any]) -> list[Any]:
        # Behind both entry points, so that a subclass overriding one never has it called by the other.
        results = self._results
        if self._shutdown:
            self._logger.warning("Exporter already shutdown, ignoring batch")
            return [results.FAILURE] * len(batches)
        if self._spiller is not None:
            self._spiller.adopt_files_left()
        # Marked as each batch ends, where a processor of spanbatch's paces this call (see ``_export_clock``).
        progress = paced_progress()
        if (
            self._native is None
            or not isinstance(self._metrics, NoOpExporterMetrics)
            or (self._spiller is not None and (self._spiller.down or self._spiller.cut_off()))
        ):
            # The exporter's own metrics time each export, so each is made on its own; a backend
            # known down (or the cut-off at exit passed) gets no first attempt, each request goes to disk through
            # the client.
            return [_marked(progress, self._export_one(batch)) for batch in batches]
        read: list[tuple[int, SpanRequest | LogRequest]] = []
        outcomes = [results.FAILURE] * len(batches)
        for index, batch in enumerate(batches):
            try:
                request = read_batch(self._encoder, batch)
            except Exception as error:
                self._logger.error("Failed to encode %s batch: %s", self._signal, error)
                continue
            if request.pending_parts():
                read.append((index, request))
            elif request.parts:  # every part accepted by an earlier attempt
                outcomes[index] = results.SUCCESS
        client = self._client
        sent = self._native.send_all(
            client._endpoint,
            client._headers,
            [request for _, request in read],
            encoding=client._compression.value,
            max_request_size=self._max_request_size,
            timeout=client._timeout,
            progress=progress,
        )
        for (index, request), first_attempt in zip(read, sent, strict=True):
            with spills_of(self._spiller, batches[index]):
                outcomes[index] = _marked(progress, self._settle(request, first_attempt))
        return outcomes

    def _settle(self, request: SpanRequest | LogRequest, first_attempt: NativeHTTPResult) -> Any:
        """The result of a request ``send_all`` made (or, on failure, of the stock client's retries after it).

        ``send_all`` stops a request at its first part that fails; that part and the ones after
        it go on here through the stock client, each once accepted, within the export's deadline.
        """
        assert self._native is not None
        results = self._results
        status = first_attempt.status_code
        if status is not None and 200 <= status < 400:
            return results.SUCCESS
        if isinstance(first_attempt.error, RequestPayloadTooLargeError):
            self._logger.warning("Dropping %s batch: %s", self._signal, first_attempt.error)
            return results.FAILURE
        deadline = Deadline.after(self._client._timeout, spent=first_attempt.seconds)
        for position, index in enumerate(request.pending_parts()):
            body = request.part_to_bytes(index)
            client = self._client_until(deadline)
            with self._sending(request.part_items(index)):
                if position == 0 and not isinstance(first_attempt.error, NotSentError):
                    with self._native.replaying(first_attempt):
                        outcome = client.export(body)
                else:
                    outcome = client.export(body)
            if not outcome.success:
                return results.FAILURE
            request.accept(index)
        return results.SUCCESS

    def _client_until(self, deadline: Deadline) -> _http._OTLPHTTPClient:
        """The stock client with what is left of the export's ``deadline`` as its timeout, for its retries too
        (a fresh one would resend a timed-out batch at once), and at exit no later than the cut-off (which a Rust
        transport applies to sends under way too, ``requests`` only to those it begins). A shallow copy: same
        transport, headers and shutdown event."""
        client = copy.copy(self._client)
        client._timeout = self._cutoff.capped(deadline.left())
        return client

    def _export_one(self, batch: Any) -> Any:
        # The stock ``export`` with ``encode_*(...).Serialize*ToString()`` swapped out, once per part not yet
        # accepted. Each part is one operation of the exporter's metrics; what is not sent is counted beside them.
        results, signal = self._results, self._signal
        try:
            request = read_batch(self._encoder, batch)
        except Exception as error:
            self._logger.error("Failed to encode %s batch: %s", signal, error)
            count_failed(self._metrics, len(batch), error)
            return results.FAILURE
        count_left_out(self._metrics, request, RequestPayloadTooLargeError(f"{signal} over max_request_size"))
        if not request.parts:  # every item left out (too large, unreadable): nothing to send, as stock fails
            return results.FAILURE
        with spills_of(self._spiller, batch):
            deadline = Deadline.after(self._client._timeout)
            pending = request.pending_parts()
            for position, index in enumerate(pending):
                items = request.part_items(index)
                client = self._client_until(deadline)
                with self._metrics.export_operation(items) as result, self._sending(items):
                    sent = self._export_part(client, request.part_to_bytes(index), result)
                if not sent:
                    count_unsent(self._metrics, request, pending[position + 1 :])
                    return results.FAILURE
                request.accept(index)
        return results.SUCCESS

    def _sending(self, items: int) -> AbstractContextManager[None]:
        """Around the client's send of one part: the items its spill (if any) stores it with."""
        return nullcontext() if self._spiller is None else self._spiller.sending(items)

    def _export_part(self, client: _http._OTLPHTTPClient, serialized_data: bytes, result: Any) -> bool:
        """Sends one part with the stock ``client``, as the stock ``export`` sends its body; False if it failed."""
        signal = self._signal
        if _is_request_too_large(serialized_data, self._max_request_size):
            self._logger.warning(
                "Dropping %s batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                signal,
                len(serialized_data),
                self._max_request_size,
            )
            result.error = RequestPayloadTooLargeError(
                f"Serialized {signal} request size {len(serialized_data)} bytes exceeds "
                f"max_request_size {self._max_request_size} bytes."
            )
            return False
        export_result = client.export(serialized_data)
        if not export_result.success:
            result.error = export_result.error
            result.error_attrs = (
                {HTTP_RESPONSE_STATUS_CODE: export_result.status_code}
                if export_result.status_code is not None
                else None
            )
            return False
        return True


class OTLPSpanExporter(RustEncodedHTTP, _stock.OTLPSpanExporter):
    """Drop-in for ``opentelemetry.exporter.otlp.proto.http.trace_exporter.OTLPSpanExporter``.

    Same arguments, ``OTEL_EXPORTER_OTLP_*`` / ``OTEL_EXPORTER_OTLP_TRACES_*`` variables,
    compression choices, retries (429/502/503/504 and connection errors, with backoff)
    and results: those are the stock exporter's own code. Only the request body is
    made differently, by spanbatch's Rust encoder, and gzip/deflate run in Rust too.
    Works with any span processor.
    """

    _encoder_class = SpanEncoder
    _signal = "span"
    _results = SpanExportResult
    _logger = logger

    span_encoder = DeclaredEncoder(SpanEncoder)
    # Declared with the ``export`` below it: spanbatch's processors count what it spills (see ``_capabilities``).
    spill_counts = RustEncodedHTTP.spill_counts

    def export(self, spans: Batch) -> SpanExportResult:
        result: SpanExportResult = self._export_batches([spans])[0]
        return result

    # Declared with the ``export_many`` below it: it tells as each batch ends (see ``_export_clock``).
    reports_batch_ends = True

    def export_many(self, batches: Sequence[Batch]) -> list[SpanExportResult]:
        """Export each batch as its own request; spanbatch's processors call this with several at once.

        A batch is spans, or a ``SpanRequest`` this exporter's ``span_encoder`` read them into.
        """
        return self._export_batches(batches)


R = TypeVar("R")


def _marked(progress: SendProgress | None, outcome: R) -> R:
    """A batch's ``outcome``, once ``progress`` (if any) is marked: the batch has ended."""
    if progress is not None:
        progress.mark()
    return outcome


def native_transport_for(exporter: RustEncodedHTTP, session: requests.Session | None) -> NativeHTTPTransport | None:
    """A Rust transport to use instead of the stock one, where it behaves the same: plain HTTP, no session.

    TLS (``https://``, certificates) and custom or credential-provider sessions stay on requests.
    """
    transport = exporter._client._transport
    if (
        session is not None
        or type(transport) is not RequestsHTTPTransport
        or not _sent_as_given(exporter._endpoint, exporter._client._headers)
        or exporter._credential_provider_set()
    ):
        return None
    native = NativeHTTPTransport()
    exporter._client._transport = native
    transport.close()
    return native


def replay_transport_maker(
    exporter: RustEncodedHTTP, session: requests.Session | None, given: BaseHTTPTransport | None
) -> Callable[[], BaseHTTPTransport] | None:
    """What makes a transport like the exporter's for its replay thread; None where the caller gave the session
    (``session``, or a credential provider's) or the transport (``given``)."""
    if exporter._native is not None:
        return NativeHTTPTransport
    transport = exporter._client._transport
    if (
        given is not None
        or session is not None
        or type(transport) is not RequestsHTTPTransport
        or exporter._credential_provider_set()
    ):
        return None
    made = transport._session  # a new session with only these set (see the stock ``_build_transport``)
    return lambda: RequestsHTTPTransport(verify=made.verify, cert=made.cert)


def _sent_as_given(endpoint: str, headers: Mapping[Any, Any]) -> bool:
    """Whether ``requests`` would send this plain-HTTP endpoint and these headers as they are, as Rust does.

    Otherwise they stay with ``requests``, which quotes a path (spaces, non-ASCII) and removes its '.' and '..'
    segments, decodes %-escaped credentials in the URL into its Basic header, encodes header values that are not
    ASCII text as latin-1 and refuses some (a failed export); and which reads the environment: a proxy it would
    use for this endpoint (``http_proxy``/``all_proxy``, ``no_proxy``), credentials for its host in ``~/.netrc``.
    Read once here, as the Rust transport uses no proxy.
    """
    parts = urlsplit(endpoint)
    return (
        parts.scheme.lower() == "http"
        and "@" not in parts.netloc
        and requote_uri(endpoint) == endpoint
        and not any(segment in {".", ".."} for segment in parts.path.split("/"))
        and all(_sent_as_text(name, value) and name.lower() not in _REQUESTS_OWN for name, value in headers.items())
        and select_proxy(endpoint, get_environ_proxies(endpoint)) is None
        and get_netrc_auth(endpoint) is None
    )


# Headers whose meaning requests decides itself: it writes the body's own length over a user's Content-Length, and
# sends the body at once whatever Expect says. The Rust transport obeys both (a wrong length fails the request; it
# waits for a "100 Continue" an OTLP receiver never sends), so exporters given them stay with requests.
_REQUESTS_OWN = frozenset({"content-length", "expect"})

# What the Rust transport's header types take: a name that is an HTTP token, a value of visible ASCII, spaces and
# tabs. requests sends more (any name without a colon, control characters inside a value), so those stay with it.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")


def _sent_as_text(name: object, value: object) -> bool:
    """A header ``requests`` sends as the Rust transport does: an HTTP token and ASCII text it takes as they are
    (it encodes other text as latin-1, where Rust sends UTF-8, and refuses values such as one with leading
    whitespace)."""
    if not (
        isinstance(name, str) and isinstance(value, str) and _TOKEN.fullmatch(name) and _FIELD_VALUE.fullmatch(value)
    ):
        return False
    try:
        check_header_validity((name, value))
    except InvalidHeader:
        return False
    return True
