"""OTLP/gRPC span and log exporters: the stock exporters' channel, retries and settings, Rust encoding.

Private parts of the stock exporters this relies on (checked by the tests, 1.43.0 and 1.45.2):
``OTLPExporterMixin._initialize_channel_and_stub`` (called at construction and again on
reconnect), ``_channel`` (which ``_export`` closes before it reconnects, and ``shutdown`` after it sets
``_shutdown``: a ``SharedChannel`` here), ``_client`` (whose ``Export(request=..., metadata=..., timeout=...)``
``_export`` calls, once per part), ``_timeout`` (read by ``_export`` for its deadline), ``_result``,
``_shutdown_in_progress`` (set at exit with a spill, to cut the backoff short) and ``_translate_data``.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import grpc
from opentelemetry.exporter.otlp.proto.grpc import _log_exporter as _stock_logs
from opentelemetry.exporter.otlp.proto.grpc import exporter as _exporter
from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as _stock
from opentelemetry.metrics import MeterProvider
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from spanbatch._core import LogEncoder, LogRequest, RequestTooLargeError, SpanEncoder, SpanRequest
from spanbatch._encoding import Batch, encode_batch, read_batch
from spanbatch._fork import PerProcess
from spanbatch._releases import require_stock_encoder
from spanbatch._spill import Sent, SpillCounts
from spanbatch.exporter import _limits
from spanbatch.exporter._cutoff import Cutoff
from spanbatch.exporter._deadline import Deadline
from spanbatch.exporter._declared import DeclaredEncoder
from spanbatch.exporter._shared_channel import Channels, SharedChannel
from spanbatch.exporter._spill_identity import Identity, grpc_identity
from spanbatch.exporter._spilling import spill_directory, spiller_for, spills_of
from spanbatch.exporter._unsent import count_left_out, count_unsent

if TYPE_CHECKING:
    from spanbatch._encoding import LogBatch

__all__ = ["OTLPLogExporter", "OTLPSpanExporter"]

# The Rust encoder writes a None value (a log body, an attribute, an item of a list or map) as the stock
# encoder does from 1.43 on; older ones leave it out or drop the attribute, so this would not be a drop-in.
require_stock_encoder((1, 43), __name__, "opentelemetry-exporter-otlp-proto-grpc>=1.43", "otlp-grpc")

# How often a spilling exporter's call waiting for its answer looks at the exit's cut-off (see ``_cutoff``).
_LOOK_EVERY_SECONDS = 0.1

_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_EXPORT_LOGS_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


class _EncodedServiceStub:
    """A TraceService or LogsService stub whose ``Export`` sends an already serialized request as is.

    It notes, per thread, the last request it sent, the code it failed with and whether an attempt
    was refused for its size: what the spill stores once the stock retries give up (never one too large);
    and, weakly, the error it raised (see ``RustEncodedGRPC._stock_export``).
    """

    def __init__(
        self, channel: SharedChannel, method: str, response: type[Any], last: threading.local, exporter: RustEncodedGRPC
    ) -> None:
        # No request serializer: gRPC then sends the bytes it is given.
        self._call = channel.grpc.unary_unary(
            method,
            request_serializer=None,
            response_deserializer=response.FromString,
        )
        self._channel = channel
        self._last = last
        self._exporter = weakref.ref(exporter)  # the exporter holds its stub

    def Export(self, request: bytes, metadata: Any = None, timeout: float | None = None) -> Any:
        if not self._channel.begin_call():
            # Another export thread's reconnect retired this stub's channel before the call started: it never left,
            # so the stub made in its place sends it. None once shut down: then gRPC's own answer (closed channel).
            deadline = None if timeout is None else time.monotonic() + timeout
            exporter = self._exporter()
            current = None if exporter is None else exporter._stub_in_place_of(self._channel, timeout)
            left = None if deadline is None else max(0.0, deadline - time.monotonic())  # the call's time, not twice
            if current is not None:
                return current.Export(request, metadata=metadata, timeout=left)
            return self._call(request, metadata=metadata, timeout=left)
        self._last.request, self._last.code = request, None
        try:
            exporter = self._exporter()
            cutoff = None if exporter is None else exporter._cutoff
            if cutoff is None:
                return self._call(request, metadata=metadata, timeout=timeout)
            return _answer_by(self._call, request, metadata, timeout, cutoff)
        except grpc.RpcError as error:
            # Kept over the retries of one export: a retry cut short by its deadline says nothing of the size.
            self._last.code = error.code()
            self._last.too_large = _too_large(error) or getattr(self._last, "too_large", False)
            self._last.error = weakref.ref(error)
            raise
        finally:
            self._channel.end_call()


class CutShortError(grpc.RpcError):  # type: ignore[misc]  # grpc ships no types
    """A spilling exporter's call cut short at exit (see ``_cutoff``): out of time, as if its deadline had passed, and
    retried (then spilled) as such. The stock ``_export`` reads these three of a failed call."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.DEADLINE_EXCEEDED

    def details(self) -> str:
        return "cut short: no answer by the cut-off set at exit (the exit deadline is near)"

    def trailing_metadata(self) -> tuple[()]:
        return ()


def _answer_by(call: Any, request: bytes, metadata: Any, timeout: float | None, cutoff: Cutoff) -> Any:
    """The answer to ``call``, as its blocking form gives it, unless the exit's ``cutoff`` comes first: looked at
    while it waits, since one set after the call began still ends it. Past the cut-off, nothing is sent."""
    left = cutoff.left()
    if left == 0.0:
        raise CutShortError()
    if left is not None:
        # A call begun once exit is under way: the cut-off, known now, bounds the blocking form as well. Not a
        # future: its answer comes through the channel's spin thread, which CPython 3.12+ cannot start once
        # interpreter shutdown has begun (atexit), and the call, made all the same, never ended: the channel's
        # close at shutdown waited for it for good (a spilling exporter's first send at exit hung the process).
        return call(request, metadata=metadata, timeout=left if timeout is None else min(timeout, left))
    future = call.future(request, metadata=metadata, timeout=timeout)
    failure: grpc.RpcError | None = None
    try:
        while True:
            left = cutoff.left()
            if left == 0.0 and future.cancel():
                raise CutShortError()
            look = _LOOK_EVERY_SECONDS if left is None else min(left, _LOOK_EVERY_SECONDS)
            try:  # the call's own failure (an ``RpcError``), raised as the blocking call raises it; None: the answer
                failure = future.exception(timeout=look)
            except grpc.FutureTimeoutError:
                continue
            if failure is None:
                return future.result()
            raise failure
    except BaseException:  # Ctrl-C in the wait, say: nobody waits for the call any more
        future.cancel()
        raise
    finally:
        # A failed call is its own error (the future): held by this frame, which its traceback holds, it would keep the
        # callers' frames, and the exporter they hold, in a cycle only the cyclic GC frees (``future.result()`` raises
        # it from a frame of gRPC's own that holds it: not used for a failure).
        future = failure = None


def _too_large(error: grpc.RpcError) -> bool:
    """Whether a message size limit (the server's or the channel's) refused the request: it always will.

    gRPC answers so with RESOURCE_EXHAUSTED, a code the stock exporter retries, and says why only in its details.
    """
    details = error.details() if isinstance(error, grpc.Call) else None
    return error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in (details or "")


# What gRPC's own channel says when it reached no server (pick_first, round_robin): not the backend's answer.
_NOT_CONNECTED = ("failed to connect to all addresses", "connections to all backends failing")


def _unanswered(error: grpc.RpcError) -> bool:
    """Whether the channel gave this status for want of a server to send to (the backend down), not the backend: a
    replay probe it fails says nothing of its file. Not ``DEADLINE_EXCEEDED``: out of time may be the file's doing
    (a large request a slow backend never finishes), so busy, passed over after a few (``_spill``)."""
    details = (error.details() if isinstance(error, grpc.Call) else None) or ""
    return error.code() is grpc.StatusCode.UNAVAILABLE and any(text in details for text in _NOT_CONNECTED)


@dataclass(frozen=True)
class _Part:
    """One part of a request cut to the byte limit: what the stock ``_export`` sends, with its retries."""

    request: SpanRequest | LogRequest
    index: int

    def __len__(self) -> int:  # the stock exporter's metrics count the items of what it sends
        return self.request.part_items(self.index)


def _newer_parameters(
    retryable_error_codes: Iterable[grpc.StatusCode] | None, meter_provider: MeterProvider | None
) -> dict[str, Any]:
    """Stock releases before 1.45 have neither of these two parameters: passed on only when given."""
    extra: dict[str, Any] = {}
    if retryable_error_codes is not None:
        extra["retryable_error_codes"] = retryable_error_codes
    if meter_provider is not None:
        extra["meter_provider"] = meter_provider
    return extra


def _compression_name(compression: grpc.Compression | int | None) -> str:
    """What the spill directory is keyed by. gRPC (and so the stock exporter) also takes the enum's int values."""
    if not compression:  # None, NoCompression
        return "none"
    try:
        name: str = grpc.Compression(compression).name
    except ValueError:  # a value gRPC took without checking it: still one directory per value
        return str(compression)
    return name.lower()


class RustEncodedGRPC:
    """What spanbatch's OTLP/gRPC exporters add to a stock exporter (a base listed before it): requests
    encoded by the Rust encoder, sent as they are by the stock exporter's channel.

    ``max_export_batch_bytes`` (keyword; ``SPANBATCH_MAX_EXPORT_BATCH_BYTES``; default 4 MiB,
    gRPC's default max message size; bounded by a ``grpc.max_send_message_length`` in
    ``channel_options``): a batch whose request would be larger is sent as several
    requests that each fit, each sent once (with the stock retries); an item (span or log record)
    larger on its own is left out (warned about; spanbatch's processors count it as ``too_large``).
    The stock exporter sends the batch whole, and the server refuses it.
    """

    # What each subclass names: its encoder, the service method its requests go to and the response.
    _encoder_class: ClassVar[type[SpanEncoder | LogEncoder]]
    _method: ClassVar[str]
    _variables_signal: ClassVar[str]  # the signal as the stock variables name it (OTEL_EXPORTER_OTLP_<signal>_...)
    _response: ClassVar[type[Any]]
    # The stock exporter's own attributes.
    _client: _EncodedServiceStub  # made by the stock code with ``_stub``
    _endpoint: str
    _headers: Any
    _full_timeout: float  # the stock exporter's ``_timeout`` (see the property)
    _shutdown: bool
    _shutdown_in_progress: threading.Event
    _result: Any  # its result enum
    _initialize_channel_and_stub: Callable[[], None]  # a new channel and ``_client`` (construction, reconnect)

    def __init__(  # noqa: PLR0917 -- the stock exporter's positional parameters, for a drop-in
        self,
        endpoint: str | None = None,
        insecure: bool | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        headers: Sequence[tuple[str, str]] | dict[str, str] | str | None = None,
        timeout: float | None = None,
        compression: grpc.Compression | None = None,
        channel_options: tuple[tuple[str, str]] | None = None,
        retryable_error_codes: Iterable[grpc.StatusCode] | None = None,
        *,
        meter_provider: MeterProvider | None = None,
        max_export_batch_bytes: int | None = None,
        spill_dir: str | os.PathLike[str] | None = None,
        spill_max_bytes: int | None = None,
        spill_key: str | None = None,
    ) -> None:
        limit = _limits.max_export_batch_bytes(_limits.checked(max_export_batch_bytes), _limits.GRPC_DEFAULT_BYTES)
        # The channel refuses to send a larger message whatever the server takes: no part may be larger.
        channel_limit = _limits.grpc_send_limit(channel_options)
        if channel_limit is not None:
            limit = channel_limit if limit is None else min(limit, channel_limit)
        self._encoder = self._encoder_class(limit)
        self._last = threading.local()  # before the stock constructor, which makes the stub
        self._cutoff: Cutoff | None = None  # read by the stub's calls; set below with a spill directory
        self._channels = PerProcess(Channels)  # a forked child's own
        extra = _newer_parameters(retryable_error_codes, meter_provider)
        super().__init__(  # type: ignore[call-arg]  # the stock exporter's, next in the MRO
            endpoint, insecure, credentials, headers, timeout, compression, channel_options, **extra
        )
        # At exit the stock backoff is cut short (its shutdown event, which nothing else reads before the
        # shutdown), and so is a call still waiting for its answer at the cut-off, so that a failing request
        # reaches the disk before the exit deadline (see ``_cutoff``). The service method is part of the
        # backend's name: the span and log exporters of one collector share its address.
        # None without a spill directory; only then does it read the stock exporter's state (which tests
        # that stub the stock constructor do not set).
        self._cutoff = None if spill_directory(spill_dir) is None else Cutoff(self._shutdown_in_progress)
        self._spiller = (
            None
            if self._cutoff is None
            else spiller_for(
                spill_dir,
                spill_max_bytes,
                protocol="grpc",
                endpoint=f"{self._endpoint}{self._method}",
                identity=partial(self._spill_identity, credentials, channel_options),
                compression=_compression_name(getattr(self, "_compression", None)),
                spill_key=spill_key,
                send_once=self._send_spilled,
                cutoff=self._cutoff,
            )
        )
        if self._spiller is None:
            # Refused (credentials it cannot read): no cut-off either, which nothing would set at exit, and its calls
            # go the blocking way as without a spill directory (a future's spin thread cannot start then on 3.12+).
            self._cutoff = None

    def _spill_identity(
        self, credentials: grpc.ChannelCredentials | None, channel_options: Iterable[tuple[str, Any]] | None
    ) -> Identity:
        """What replays send as: the metadata of each call, the channel's options and credentials."""
        identity = grpc_identity(
            insecure=bool(getattr(self, "_insecure", True)),
            credentials_given=credentials is not None,
            signal=self._variables_signal,
            channel_options=channel_options,
        )
        identity.headers = list(self._headers)
        return identity

    @property
    def max_export_batch_bytes(self) -> int | None:
        """No request this exporter sends is larger, serialized before compression."""
        return self._encoder.max_request_bytes

    def _export_batch(self, batch: Batch | LogBatch) -> Any:
        """The stock ``export`` (``_export``, with its retries) for each part the backend has not accepted yet;
        each class's ``export`` with its stock parameter name."""
        request = read_batch(self._encoder, batch)  # type: ignore[arg-type]
        # The stock exporter's own metrics (from 1.45 on) count each part in its ``_export``; what is not sent, here.
        metrics = getattr(self, "_metrics", None)
        count_left_out(metrics, request, RequestTooLargeError("over max_export_batch_bytes"))
        if not request.parts:  # every item left out (warned about): nothing to send
            return self._result.FAILURE
        with spills_of(self._spiller, batch):
            deadline = Deadline.after(self._full_timeout)
            pending = request.pending_parts()
            for position, index in enumerate(pending):
                self._last.time_left = deadline.left()
                try:
                    result = self._export(_Part(request, index))
                finally:
                    self._last.time_left = None
                if result is not self._result.SUCCESS:
                    count_unsent(metrics, request, pending[position + 1 :])
                    return result
                request.accept(index)
        return self._result.SUCCESS

    @property
    def _timeout(self) -> float:
        """The stock ``timeout`` (which its ``_export`` reads as its deadline); while ``export`` sends the parts
        of one batch on this thread, what is left of it."""
        left: float | None = getattr(self._last, "time_left", None)
        return self._full_timeout if left is None else left

    @_timeout.setter
    def _timeout(self, value: float) -> None:  # set by the stock constructor
        self._full_timeout = value

    # The stock code sets ``_channel`` (a new gRPC channel: at construction and in its reconnect) and makes
    # ``_client`` with ``_stub``: both are this class's as they are set, so that no other export thread ever sees a
    # bare channel (its reconnect's close would close it under this thread's calls) nor the stock stub (which takes
    # messages, not the bytes ``_translate_data`` gives).
    @property
    def _channel(self) -> SharedChannel | None:
        return self._shared_channel

    @_channel.setter
    def _channel(self, channel: grpc.Channel | None) -> None:
        self._shared_channel = None if channel is None else self._channels.get().make(channel)

    @property
    def _stub(self) -> Callable[[SharedChannel], _EncodedServiceStub]:
        return self._make_stub

    @_stub.setter
    def _stub(self, stock_stub: object) -> None:  # the stock constructor's service stub class: not used
        pass

    def _make_stub(self, channel: SharedChannel) -> _EncodedServiceStub:
        stub = _EncodedServiceStub(channel, self._method, self._response, self._last, self)
        channel.stub_made(stub)
        return stub

    def _stub_in_place_of(self, retired: SharedChannel, wait: float | None) -> _EncodedServiceStub | None:
        """The stub of the channel made in place of ``retired`` (the stock reconnect makes it just after the close
        that retired it: waited for up to ``wait`` seconds); None once shut down. The channel's own stub, not
        ``_client``: a subclass may have wrapped it, and its wrapper already ran for this call."""
        channels = self._channels.get()

        def made() -> bool:
            current = self._shared_channel
            return current is not None and current is not retired and current.stub is not None

        with channels.changed:
            if not channels.changed.wait_for(lambda: self._shutdown or made(), wait) or self._shutdown:
                return None
            assert self._shared_channel is not None
            stub = self._shared_channel.stub
        return stub if isinstance(stub, _EncodedServiceStub) else None

    def _channel_of_this_process(self) -> None:
        """In a forked child, a channel of its own before the first call: the parent's may have had a call
        in flight at the fork, and used in the child it can hang past its deadline (holding the spill file
        it sends) or crash the child."""
        if self._channel is None or self._channel.pid != os.getpid():
            self._initialize_channel_and_stub()

    def _translate_data(self, data: Batch | LogBatch | _Part) -> bytes:
        if isinstance(data, _Part):
            return data.request.part_to_bytes(data.index)
        return encode_batch(self._encoder, data)  # type: ignore[arg-type]

    def _export(self, data: _Part) -> Any:
        """The stock ``_export`` of one part; with a spill, a part that still fails after the stock retries is
        stored on disk and reported as sent (so ``export`` accepts it, and a retry never sends it again)."""
        self._channel_of_this_process()
        spiller = self._spiller
        if spiller is None or self._shutdown:
            return self._stock_export(data)
        spiller.adopt_files_left()
        # Behind what waits on disk, without a try the backend is known to refuse, or one past the cut-off at exit.
        if spiller.down or spiller.cut_off():
            return self._spill(self._translate_data(data), len(data))
        self._last.request = self._last.code = None
        self._last.too_large = False
        result = self._stock_export(data)
        request, code = self._last.request, self._last.code
        # Only what a later attempt could deliver: a request the backend refused for good (or for its size)
        # stays refused, and is dropped as without a spill.
        if (
            result is self._result.SUCCESS
            or request is None
            or self._last.too_large
            or code not in self._retryable_codes()
        ):
            return result
        return self._spill(request, len(data))

    def _stock_export(self, data: _Part) -> Any:
        """The stock ``_export`` of ``data``, leaving no reference cycle behind.

        The stock code keeps the error its last attempt failed with in its frame (for its metrics), and that error's
        traceback holds the frame, which holds this exporter: dropped, the exporter would live on until the cyclic GC,
        its replay thread probing a down backend meanwhile. The traceback goes once the stock code is done with it.
        """
        self._last.error = None
        try:
            return super()._export(data)  # type: ignore[misc]
        finally:
            noted: weakref.ref[BaseException] | None = self._last.error
            error = None if noted is None else noted()
            if error is not None:
                error.__traceback__ = None
            self._last.error = None

    def _retryable_codes(self) -> Iterable[grpc.StatusCode]:
        # The stock set is configurable from 1.45 on; before, it is the module's constant.
        codes: Iterable[grpc.StatusCode] | str | None = getattr(self, "_retryable_error_codes", None)
        if codes is None or isinstance(codes, str):
            codes = getattr(_exporter, "_RETRYABLE_ERROR_CODES", (grpc.StatusCode.UNAVAILABLE,))
        return codes or ()

    def _spill(self, request: bytes, items: int) -> Any:
        assert self._spiller is not None
        return self._result.SUCCESS if self._spiller.spill(request, items) else self._result.FAILURE

    def _send_spilled(self, payload: bytes) -> Sent:
        """One attempt at a stored request, from the replay thread (a gRPC channel takes calls from any thread)."""
        self._channel_of_this_process()
        stub = self._client
        try:
            if stub is None:  # shut down meanwhile
                return Sent.UNREACHABLE
            stub.Export(request=payload, metadata=self._headers, timeout=self._timeout)
        except grpc.RpcError as error:
            # As the live export: only what the stock exporter retries may be delivered later (see the README).
            if _too_large(error) or error.code() not in self._retryable_codes():
                return Sent.REJECTED
            return Sent.UNREACHABLE if _unanswered(error) else Sent.RETRY_LATER
        except Exception:
            return Sent.RETRY_LATER
        return Sent.DELIVERED

    def spill_counts(self) -> SpillCounts | None:
        """What the spill directory did in this process (None: no spill directory)."""
        return None if self._spiller is None else self._spiller.counts()

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        # No replay starts after this; the stock shutdown closes the channel, here every channel of this process at
        # once (calls in flight end, a replay's as an export's, as the stock close ends them; a replayed file stays
        # for the next exporter), so the wait is short.
        started = time.monotonic()
        if self._spiller is not None:
            self._spiller.stop(0)
        super().shutdown(timeout_millis, **kwargs)  # type: ignore[misc]
        self._channels.get().close_all()
        if self._spiller is not None:
            self._spiller.stop(max(0.0, timeout_millis / 1000 - (time.monotonic() - started)))


# The stock ``_client`` and ``_translate_data`` are replaced on purpose: bytes in, the same response out.
class OTLPSpanExporter(RustEncodedGRPC, _stock.OTLPSpanExporter):  # type: ignore[misc]
    """Drop-in for ``opentelemetry.exporter.otlp.proto.grpc.trace_exporter.OTLPSpanExporter``.

    Same arguments, ``OTEL_EXPORTER_OTLP_*`` / ``OTEL_EXPORTER_OTLP_TRACES_*`` variables,
    channel, compression (done by gRPC's C core), retries and results: those are the
    stock exporter's own code. Only the request is made differently, by spanbatch's
    Rust encoder. Works with any span processor.
    """

    _encoder_class = SpanEncoder
    _method = _EXPORT_METHOD
    _variables_signal = "TRACES"
    _response = ExportTraceServiceResponse

    span_encoder = DeclaredEncoder(SpanEncoder)
    # Declared beside the export it stands for (see _capabilities), as the encoder is.
    spill_counts = RustEncodedGRPC.spill_counts

    def export(self, spans: Batch) -> Any:  # the stock parameter name: callers may pass it by keyword
        return self._export_batch(spans)


class OTLPLogExporter(RustEncodedGRPC, _stock_logs.OTLPLogExporter):  # type: ignore[misc]
    """Drop-in for ``opentelemetry.exporter.otlp.proto.grpc._log_exporter.OTLPLogExporter``.

    Same arguments, ``OTEL_EXPORTER_OTLP_*`` / ``OTEL_EXPORTER_OTLP_LOGS_*`` variables,
    channel, compression (done by gRPC's C core), retries and results: those are the
    stock exporter's own code. Only the request is made differently, by spanbatch's
    Rust encoder. Works with any log record processor.
    """

    _encoder_class = LogEncoder
    _method = _EXPORT_LOGS_METHOD
    _variables_signal = "LOGS"
    _response = ExportLogsServiceResponse

    log_encoder = DeclaredEncoder(LogEncoder)
    spill_counts = RustEncodedGRPC.spill_counts

    def export(self, batch: LogBatch) -> Any:
        return self._export_batch(batch)
