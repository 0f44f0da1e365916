"""An exporter's ``export()`` is the contract: fast paths only where the exporter's own class declares them.

Subclasses of spanbatch's OTLP exporters that override ``export`` to filter or redact, wrappers
that delegate with ``__getattr__``, and ``Mock()`` exporters all get ``export(list_of_spans)``,
exactly as the stock ``BatchSpanProcessor`` gives them; what reaches a real receiver on
127.0.0.1 is what the user's code let through.
"""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")

from collections.abc import Callable, Sequence
from typing import Any
from unittest.mock import MagicMock, Mock, patch

from opentelemetry.exporter.http.transport._base import BaseHTTPResult
from opentelemetry.exporter.http.transport._requests import RequestsHTTPTransport
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as StockHttpExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch import BatchSpanProcessor
from spanbatch._capabilities import encodes_spans, exports_many, reports_batch_ends
from spanbatch._core import SpanRequest
from spanbatch.exporter import OTLPSpanExporter as HttpExporter
from spanbatch.exporter.grpc import OTLPSpanExporter as GrpcExporter

from tests.helpers import LONG, make_span, provider_with
from tests.helpers.otlp_spans import corpus
from tests.helpers.receivers import GrpcRecorder, HttpRecorder

# ---- the user's code ------------------------------------------------------------------------------


def redacted(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    """The spans without health checks, and without their ``password`` attribute."""
    return [
        ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes={k: v for k, v in (span.attributes or {}).items() if k != "password"},
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )
        for span in spans
        if span.name != "health"
    ]


class Calls:
    """What the user's ``export`` was handed."""

    def __init__(self) -> None:
        self.batches: list[object] = []

    def record(self, spans: object) -> None:
        self.batches.append(spans)

    def all_lists_of_spans(self) -> bool:
        return bool(self.batches) and all(
            isinstance(batch, list) and all(isinstance(span, ReadableSpan) for span in batch) for batch in self.batches
        )


class RedactingHttp(HttpExporter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls = Calls()

    def export(self, spans: Any) -> SpanExportResult:
        self.calls.record(spans)
        return super().export(redacted(spans))


# A deliberate twin of RedactingHttp: the user's override written straight on each exporter class,
# as users write it (a shared mixin would test another shape of user code).
class RedactingGrpc(GrpcExporter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls = Calls()

    def export(self, spans: Any) -> SpanExportResult:
        self.calls.record(spans)
        return super().export(redacted(spans))


class RedactingWrapper:
    """Wraps any exporter: ``export`` redacts, everything else is the wrapped exporter's."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.calls = Calls()

    def export(self, spans: Any) -> SpanExportResult:
        self.calls.record(spans)
        return self.inner.export(redacted(spans))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def run_spans(processor: Any) -> None:
    """Ends two ordinary spans carrying a password and one health check, then shuts down."""
    provider = provider_with(processor, service="contract")
    try:
        tracer = provider.get_tracer("contract")
        for name in ("checkout", "health", "login"):
            tracer.start_span(name, attributes={"user": "ann", "password": "hunter2"}).end()
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()


REDACTED = {"checkout": {"user": "ann"}, "login": {"user": "ann"}}


# ---- subclasses and wrappers ----------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_an_http_subclass_that_overrides_export_redacts_what_is_sent(
    http_recorder: HttpRecorder, processor_class: Any
) -> None:
    exporter = RedactingHttp(endpoint=http_recorder.endpoint)
    run_spans(processor_class(exporter, schedule_delay_millis=LONG))
    assert http_recorder.spans() == REDACTED
    assert exporter.calls.all_lists_of_spans()


@pytest.mark.timeout(60)
def test_a_grpc_subclass_that_overrides_export_gets_lists_of_spans(
    grpc_recorder: GrpcRecorder, processor_class: Any
) -> None:
    exporter = RedactingGrpc(endpoint=grpc_recorder.endpoint, insecure=True)
    run_spans(processor_class(exporter, schedule_delay_millis=LONG))
    assert exporter.calls.all_lists_of_spans()
    assert not any(isinstance(batch, SpanRequest) for batch in exporter.calls.batches)
    assert grpc_recorder.spans() == REDACTED


@pytest.mark.timeout(60)
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_wrapper_that_delegates_with_getattr_is_not_bypassed(
    http_recorder: HttpRecorder, grpc_recorder: GrpcRecorder, processor_class: Any, protocol: str
) -> None:
    received: HttpRecorder | GrpcRecorder = http_recorder if protocol == "http" else grpc_recorder
    inner = (
        HttpExporter(endpoint=received.endpoint)
        if protocol == "http"
        else GrpcExporter(endpoint=received.endpoint, insecure=True)
    )
    wrapper = RedactingWrapper(inner)
    run_spans(processor_class(wrapper, schedule_delay_millis=LONG))
    assert received.spans() == REDACTED
    assert wrapper.calls.all_lists_of_spans()


# ---- mocks -------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mock_class", [Mock, MagicMock])
def test_a_mock_exporter_gets_export_called_with_the_spans(
    mock_class: type[Mock], shutdown_later: Callable[[Any], Any]
) -> None:
    # As in the SDK's own tests: a bare Mock() has every attribute, export_many and span_encoder too.
    exporter = mock_class()
    processor = shutdown_later(BatchSpanProcessor(exporter, max_export_batch_size=15, schedule_delay_millis=LONG))
    spans = [make_span(f"s{i}", span_id=i + 1) for i in range(10)]
    for span in spans:
        processor.on_end(span)
    processor.force_flush(5_000)
    processor.shutdown()
    exporter.export.assert_any_call(spans)
    assert exporter.export.call_args_list[0].args == (spans,)
    exporter.export_many.assert_not_called()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("exporter_class", [HttpExporter, GrpcExporter], ids=["http", "grpc"])
@pytest.mark.parametrize("where", ["instance", "class"])
def test_export_patched_on_the_instance_or_the_class_gets_the_spans(
    exporter_class: type[Any], where: str, shutdown_later: Callable[[Any], Any]
) -> None:
    # mock.patch.object in a user's test, or a wrapping library patching the class: as with stock,
    # the patched export is what gets the spans, as a list.
    exporter = exporter_class(endpoint="http://127.0.0.1:9/v1/traces" if exporter_class is HttpExporter else None)
    target = exporter if where == "instance" else exporter_class
    with patch.object(target, "export", return_value=SpanExportResult.SUCCESS) as patched:
        processor = shutdown_later(BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
        spans = [make_span(f"s{i}", span_id=i + 1) for i in range(3)]
        for span in spans:
            processor.on_end(span)
        assert processor.force_flush(5_000)
        processor.shutdown()
    assert [call.args[-1] for call in patched.call_args_list] == [spans]
    assert processor.stats().exported == 3


# ---- fast paths stay where the class declares them ----------------------------------------------


class ManyRedactingHttp(RedactingHttp):
    """Overrides ``export_many`` too, consistently with its ``export``: keeps export_many, gets spans."""

    def export_many(self, batches: Sequence[Any]) -> list[SpanExportResult]:
        self.calls.record(batches)
        return super().export_many([redacted(batch) for batch in batches])


class DeclaringHttp(HttpExporter):
    """Wraps every method the worker hands batches to, and declares the encoder for them."""

    span_encoder = HttpExporter.span_encoder

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handed: list[type] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.handed.append(type(spans))
        return super().export(spans)

    def export_many(self, batches: Sequence[Any]) -> list[SpanExportResult]:
        self.handed.extend(type(batch) for batch in batches)
        return super().export_many(batches)


class PlainHttp(HttpExporter):
    pass


class PlainGrpc(GrpcExporter):
    pass


class ManyOnlyHttp(HttpExporter):
    """Overrides ``export_many`` alone: the inherited encoder was declared for another ``export_many``."""

    def export_many(self, batches: Sequence[Any]) -> list[SpanExportResult]:
        return super().export_many(batches)


class NoManyHttp(HttpExporter):
    export_many = None  # type: ignore[assignment]


DEAD = "http://127.0.0.1:9/v1/traces"  # never sent to: these exporters are only looked at
GRPC_DEAD = "127.0.0.1:9"


@pytest.mark.parametrize(
    ("make", "many", "encodes", "paced"),
    [
        pytest.param(lambda: HttpExporter(endpoint=DEAD), True, True, True, id="http"),
        pytest.param(lambda: PlainHttp(endpoint=DEAD), True, True, True, id="http-plain-subclass"),
        pytest.param(lambda: GrpcExporter(endpoint=GRPC_DEAD, insecure=True), False, True, False, id="grpc"),
        pytest.param(
            lambda: PlainGrpc(endpoint=GRPC_DEAD, insecure=True), False, True, False, id="grpc-plain-subclass"
        ),
        pytest.param(lambda: RedactingHttp(endpoint=DEAD), False, False, False, id="http-overridden"),
        pytest.param(
            lambda: RedactingGrpc(endpoint=GRPC_DEAD, insecure=True), False, False, False, id="grpc-overridden"
        ),
        pytest.param(lambda: ManyRedactingHttp(endpoint=DEAD), True, False, False, id="http-both-overridden"),
        pytest.param(lambda: ManyOnlyHttp(endpoint=DEAD), True, False, False, id="http-export-many-overridden"),
        pytest.param(lambda: DeclaringHttp(endpoint=DEAD), True, True, False, id="http-all-redeclared"),
        pytest.param(lambda: NoManyHttp(endpoint=DEAD), False, True, False, id="http-export-many-set-to-none"),
        pytest.param(lambda: RedactingWrapper(HttpExporter(endpoint=DEAD)), False, False, False, id="getattr-wrapper"),
        pytest.param(Mock, False, False, False, id="Mock"),
        pytest.param(MagicMock, False, False, False, id="MagicMock"),
        pytest.param(lambda: Mock(spec=HttpExporter), False, False, False, id="Mock-spec"),
    ],
)
def test_fast_paths_are_decided_on_the_class(make: Any, many: bool, encodes: bool, paced: bool) -> None:
    # ``paced``: its export_many tells the processor as each batch ends; an override of it (even one that calls
    # ours) tells nothing, and is given the timeout per batch of the call.
    exporter = make()
    assert (exports_many(exporter), encodes_spans(exporter), reports_batch_ends(exporter)) == (many, encodes, paced)


@pytest.mark.timeout(60)
def test_a_subclass_overriding_export_and_export_many_keeps_export_many(http_recorder: HttpRecorder) -> None:
    exporter = ManyRedactingHttp(endpoint=http_recorder.endpoint)
    run_spans(BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    assert http_recorder.spans() == REDACTED
    (call,) = exporter.calls.batches  # one export_many call, with lists of spans
    assert isinstance(call, list)
    assert all(isinstance(batch, list) for batch in call)


@pytest.mark.timeout(60)
def test_a_subclass_that_declares_the_encoder_gets_requests(http_recorder: HttpRecorder) -> None:
    exporter = DeclaringHttp(endpoint=http_recorder.endpoint)
    run_spans(BatchSpanProcessor(exporter, schedule_delay_millis=LONG))
    assert exporter.handed == [SpanRequest]
    assert set(http_recorder.spans()) == {"checkout", "health", "login"}


@pytest.mark.timeout(30)
def test_the_http_exporters_export_does_not_call_an_overridden_export_many(http_recorder: HttpRecorder) -> None:
    # As with the stock exporter, which has no export_many: each entry point is its own.
    exporter = ManyRedactingHttp(endpoint=http_recorder.endpoint)
    assert exporter.export(corpus()) is SpanExportResult.SUCCESS
    assert len(exporter.calls.batches) == 1


# ---- the stock constructor's keywords -----------------------------------------------------------


class CountingTransport(RequestsHTTPTransport):
    """The stock requests transport, counting its requests."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    def request(self, method: str, url: str, **kwargs: Any) -> BaseHTTPResult:
        self.requests += 1
        return super().request(method, url, **kwargs)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("exporter_class", [HttpExporter, StockHttpExporter], ids=["spanbatch", "stock"])
def test_the_http_exporter_sends_through_the_transport_it_is_given(
    http_recorder: HttpRecorder, exporter_class: type[Any]
) -> None:
    transport = CountingTransport()
    exporter = exporter_class(endpoint=http_recorder.endpoint, _transport=transport)
    assert exporter.export(corpus()) is SpanExportResult.SUCCESS
    assert transport.requests == 1
    assert len(http_recorder.received) == 1
    # A plain requests transport, given explicitly, is kept too: it is the caller's.
    plain = RequestsHTTPTransport()
    assert exporter_class(endpoint=http_recorder.endpoint, _transport=plain)._client._transport is plain
