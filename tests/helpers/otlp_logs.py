"""Log records for the OTLP log tests and benchmarks: every field, every body kind, odd corners."""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Sequence
from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import LogRecordLimits, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import TraceFlags

from tests.helpers.otlp_spans import EVERY_TYPE

BODIES: list[Any] = [
    None,
    "",
    "plain text",
    "héllo 🌍 日本語",
    b"",
    b"\x00\xffbin",
    0,
    -1,
    2**63 - 1,
    -(2**63),
    0.0,
    -0.0,
    math.nan,
    math.inf,
    2.5,
    True,
    False,
    [],
    (),
    {},
    [1, "two", 3.0, None, b"4", [5, [6]], {"seven": 7}],
    {"message": "m", "nested": {"list": [1, 2], "empty": {}, "none": None}, 3: "int key"},
    {"deep": [[[{"a": [[["b"]]]}]]]},
]


def record(
    body: Any = "body",
    *,
    timestamp: int | None = 1_700_000_000_000_000_001,
    observed_timestamp: int = 1_700_000_000_000_000_002,
    trace_id: int = 0x0AF7651916CD43DD8448EB211C80319C,
    span_id: int = 0x00F067AA0BA902B7,
    trace_flags: int = 1,
    severity_text: str | None = "INFO",
    severity_number: SeverityNumber | None = SeverityNumber.INFO,
    attributes: Any = None,
    event_name: str | None = None,
    resource: Resource | None = None,
    scope: InstrumentationScope | None = None,
) -> ReadableLogRecord:
    """A readable record, its fields set directly (the API's constructor reads the current span)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        log = LogRecord(
            timestamp=timestamp,
            observed_timestamp=observed_timestamp,
            trace_id=trace_id,
            span_id=span_id,
            trace_flags=TraceFlags(trace_flags),
            severity_text=severity_text,
            severity_number=severity_number,
            body=body,
            attributes=attributes,
        )
    log.event_name = event_name
    return ReadableLogRecord(log, resource or Resource.create({"service.name": "svc"}), scope)


def through_the_sdk(log: ReadableLogRecord, limits: LogRecordLimits | None = None) -> ReadableLogRecord:
    """``log`` as the SDK's logger hands it to processors: attributes bounded (and counted when dropped)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rw = ReadWriteLogRecord(log.log_record, log.resource, log.instrumentation_scope, limits or LogRecordLimits())
    return ReadableLogRecord(rw.log_record, rw.resource, rw.instrumentation_scope, rw.limits)


def corpus() -> list[ReadableLogRecord]:
    """Every body kind and field, two resources (a third equal to the first), several scopes."""
    first = Resource({"service.name": "a", "host.id": "h", "tags": ("x", "y")}, "https://schema/r")
    second = Resource({"service.name": "b"})
    equal_to_first = Resource({"tags": ("x", "y"), "host.id": "h", "service.name": "a"}, "https://schema/r")
    plain = InstrumentationScope("lib.plain")
    scoped = InstrumentationScope("lib.scoped", "1.2", "https://schema/s", {"scope.attr": 1})
    records = [record(body, resource=first, scope=plain) for body in BODIES]
    severities = list(SeverityNumber)
    records += [
        record(f"severity {s.name}", severity_number=s, severity_text=s.name, resource=second, scope=scoped)
        for s in severities
    ]
    limits = LogRecordLimits(max_attributes=3)
    records += [
        record(attributes=dict(EVERY_TYPE), resource=first, scope=scoped),
        through_the_sdk(record(attributes=dict(EVERY_TYPE), resource=first, scope=scoped)),
        through_the_sdk(record(attributes=dict(EVERY_TYPE)), limits),  # dropped_attributes > 0
        record(attributes=BoundedAttributes(attributes={"a": 1}, immutable=False)),
        record(attributes={}, event_name="gen_ai.client.inference.operation.details", resource=equal_to_first),
        record(event_name="", severity_text="", severity_number=None, resource=equal_to_first),
        record(timestamp=None, trace_id=0, span_id=0, trace_flags=0, severity_text=None),
        record(trace_id=2**128 - 1, span_id=2**64 - 1, trace_flags=255, timestamp=2**64 - 1),
        record(scope=InstrumentationScope("")),  # a falsy scope is no scope
        record(scope=None, resource=Resource({})),
    ]
    return records


def stock_bytes(records: Sequence[ReadableLogRecord]) -> bytes:
    return encode_logs(records).SerializeToString()


def genai_batch(size: int, seed: int = 7) -> list[ReadableLogRecord]:
    """GenAI-style event records: an event name, a few attributes, a 2-20 KB body (a prompt or completion)."""
    rng = random.Random(seed)
    resource = Resource.create({"service.name": "chat-service", "deployment.environment": "prod"})
    scope = InstrumentationScope("opentelemetry.instrumentation.openai_v2", "2.1b0")
    words = ["the", "model", "answer", "token", "prompt", "user", "context", "🌍", "données", "system"]
    records = []
    for i in range(size):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(400, 4000)))
        body = {"role": "assistant", "content": text, "index": i % 4, "finish_reason": "stop"}
        attributes = {
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.id": f"chatcmpl-{i:08d}",
            "gen_ai.usage.input_tokens": rng.randint(10, 5000),
            "gen_ai.usage.output_tokens": rng.randint(10, 5000),
        }
        records.append(
            through_the_sdk(
                record(body, attributes=attributes, event_name="gen_ai.choice", resource=resource, scope=scope)
            )
        )
    return records
