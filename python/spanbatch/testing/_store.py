"""Receiver-side bookkeeping: what arrived, and which fault to answer the next request with."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

# Longest a "hang" holds one request; past it the request is answered as if the fault had ended.
_LONGEST_HANG_SECONDS = 600.0


@dataclass(frozen=True)
class ReceiverStats:
    """What a receiver saw. Spans are counted only from requests it accepted.

    ``unique_spans`` counts distinct (trace id, span id) pairs; ``duplicates`` counts
    spans whose pair had already arrived (a retried or twice-exported batch).
    ``log_records`` counts the log records of accepted OTLP logs requests. ``held`` is how many
    requests a ``hold`` keeps unanswered now; each counts once it is answered.
    """

    requests: int = 0
    accepted: int = 0
    rejected: int = 0
    hung: int = 0
    malformed: int = 0
    spans: int = 0
    unique_spans: int = 0
    duplicates: int = 0
    services: dict[str, int] = field(default_factory=dict)
    log_records: int = 0
    held: int = 0


@dataclass(frozen=True)
class Fault:
    """How to answer one request: ``ok``, ``status`` (HTTP code + optional Retry-After), ``hang`` or ``hold``."""

    mode: str = "ok"
    status: int = 503
    retry_after: float | None = None


class SpanStore:
    """Thread-safe tally of decoded OTLP trace (and logs) requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = 0  # not forgotten by ``reset``: the requests are still held
        self._clear()

    def _clear(self) -> None:
        self._requests = self._accepted = self._rejected = self._hung = self._malformed = 0
        self._spans = self._duplicates = 0
        self._seen: set[bytes] = set()
        self._services: Counter[str] = Counter()
        self._names: Counter[str] = Counter()
        self._log_records = 0
        self._log_bodies: Counter[str] = Counter()

    def count_request(self, outcome: str) -> None:
        """Counts a request answered without recording it: ``rejected``, ``hung`` or ``malformed``."""
        with self._lock:
            self._requests += 1
            if outcome == "rejected":
                self._rejected += 1
            elif outcome == "hung":
                self._hung += 1
            else:
                self._malformed += 1

    def holding(self, change: int) -> None:
        """One more request held unanswered (1), or one less (-1)."""
        with self._lock:
            self._held += change

    def record(self, request: ExportTraceServiceRequest) -> None:
        """Counts an accepted request and every span in it."""
        keys: list[bytes] = []
        services: Counter[str] = Counter()
        names: Counter[str] = Counter()
        for resource_spans in request.resource_spans:
            service = next(
                (a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"), ""
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    keys.append(span.trace_id + span.span_id)
                    names[span.name] += 1
                services[service] += len(scope_spans.spans)
        with self._lock:
            self._requests += 1
            self._accepted += 1
            self._spans += len(keys)
            for key in keys:
                if key in self._seen:
                    self._duplicates += 1
                else:
                    self._seen.add(key)
            self._services.update(services)
            self._names.update(names)

    def record_logs(self, request: ExportLogsServiceRequest) -> None:
        """Counts an accepted logs request and every log record in it, by its body when that is a string."""
        bodies: Counter[str] = Counter()
        count = 0
        for resource_logs in request.resource_logs:
            for scope_logs in resource_logs.scope_logs:
                count += len(scope_logs.log_records)
                bodies.update(r.body.string_value for r in scope_logs.log_records if r.body.HasField("string_value"))
        with self._lock:
            self._requests += 1
            self._accepted += 1
            self._log_records += count
            self._log_bodies.update(bodies)

    def log_bodies(self) -> dict[str, int]:
        """How many log records arrived with each string body (duplicates included)."""
        with self._lock:
            return dict(self._log_bodies)

    def stats(self) -> ReceiverStats:
        with self._lock:
            return ReceiverStats(
                requests=self._requests,
                accepted=self._accepted,
                rejected=self._rejected,
                hung=self._hung,
                malformed=self._malformed,
                spans=self._spans,
                unique_spans=len(self._seen),
                duplicates=self._duplicates,
                services=dict(self._services),
                log_records=self._log_records,
                held=self._held,
            )

    def span_ids(self) -> set[bytes]:
        """Distinct span ids (8 bytes each) received."""
        with self._lock:
            return {key[16:] for key in self._seen}

    def span_names(self) -> dict[str, int]:
        with self._lock:
            return dict(self._names)

    def reset(self) -> None:
        with self._lock:
            self._clear()


class FaultPlan:
    """The fault the next requests get; ``times`` limits how many before answering ``ok`` again."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._fault = Fault()
        self._remaining: int | None = None
        self._passed = 0  # requests still answered ``ok`` before the fault applies
        self._generation = 0

    def set(self, fault: Fault, times: int | None, after: int = 0) -> None:
        with self._changed:
            self._fault, self._remaining, self._passed = fault, times, after
            self._generation += 1
            self._changed.notify_all()

    def take(self) -> tuple[Fault, int]:
        """The fault for one request, and the plan generation it belongs to."""
        with self._changed:
            fault, generation = self._fault, self._generation
            if self._passed > 0:
                self._passed -= 1
                return Fault(), generation
            if fault.mode != "ok" and self._remaining is not None:
                self._remaining -= 1
                if self._remaining <= 0:
                    self._fault, self._remaining = Fault(), None
            return fault, generation

    def hold_answer(self, generation: int, stopping: threading.Event, store: SpanStore) -> None:
        """``hold`` for a request to be answered then, counted in ``store`` as held meanwhile."""
        store.holding(1)
        try:
            self.hold(generation, stopping)
        finally:
            store.holding(-1)

    def hold(self, generation: int, stopping: threading.Event) -> None:
        """Blocks a hung request until the plan changes, the server stops, or the longest hang passes."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._generation != generation or stopping.is_set(), timeout=_LONGEST_HANG_SECONDS
            )

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()
