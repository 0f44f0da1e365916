"""Runs the workload once through one contender and measures what it cost and what arrived."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from spanbatch.demo._contenders import Setup
from spanbatch.demo._progress import Progress
from spanbatch.demo._workload import SpanCounter, Workload, run_workload

# force_flush and shutdown get the stock default export timeout: a dead back end shows as a 30 s wait.
_TIMEOUT_MILLIS = 30_000
# How long the receiver may take to count spans an exporter already handed over, and how often to look.
_RECEIVE_WAIT_SECONDS = 5.0
_RECEIVE_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Result:
    """One contender's figures.

    ``received`` is None when a real collector (not ours) took the spans; ``dropped`` is None for a
    processor that counts no drops (the stock one).
    """

    label: str
    exporter: str
    produced: int
    received: int | None
    dropped: Mapping[str, int] | None
    seconds: float
    app_cpu_us_per_span: float
    cpu_us_per_span: float
    flush_seconds: float
    flushed: bool
    exit_seconds: float

    @property
    def spans_per_second(self) -> float:
        return self.produced / self.seconds if self.seconds else 0.0

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values()) if self.dropped else 0

    @property
    def unaccounted(self) -> int | None:
        """Spans neither received nor counted as dropped: lost without a trace (or still on the wire)."""
        if self.received is None:
            return None
        return max(0, self.produced - self.received - self.dropped_total)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["dropped"] = None if self.dropped is None else dict(self.dropped)
        data["spans_per_second"] = self.spans_per_second
        data["unaccounted"] = self.unaccounted
        return data


def run_contender(
    label: str,
    setup: Setup,
    workload: Workload,
    received_of: Callable[[str, int], int] | None,
) -> Result:
    """``received_of(service, expected)`` returns how many spans of ``service`` the receiver counted."""
    service = f"agent-demo-{label}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}), shutdown_on_exit=False)
    provider.add_span_processor(setup.processor)
    tracer = provider.get_tracer("spanbatch.demo")
    counter = SpanCounter(workload.threads)
    cpu_started = time.process_time()
    with Progress(label, workload.sessions, lambda: sum(counter.sessions)) as progress:
        seconds = run_workload(tracer, workload, counter)
        progress.phase("flushing")
        started = time.perf_counter()
        flushed = provider.force_flush(_TIMEOUT_MILLIS)
        flush_seconds = time.perf_counter() - started
        progress.phase("shutting down")
        started = time.perf_counter()
        provider.shutdown()
        exit_seconds = time.perf_counter() - started
        progress.phase("done")
    cpu_seconds = time.process_time() - cpu_started
    dropped = None if setup.dropped is None else setup.dropped()
    produced = counter.total
    expected = produced - (sum(dropped.values()) if dropped else 0)
    return Result(
        label=label,
        exporter=setup.exporter_name,
        produced=produced,
        received=None if received_of is None else received_of(service, expected),
        dropped=dropped,
        seconds=seconds,
        app_cpu_us_per_span=sum(counter.cpu_ns) / produced / 1000 if produced else 0.0,
        cpu_us_per_span=cpu_seconds / produced * 1e6 if produced else 0.0,
        flush_seconds=flush_seconds,
        flushed=flushed,
        exit_seconds=exit_seconds,
    )


def receiver_counter(stats: Callable[[], Any]) -> Callable[[str, int], int]:
    """Reads a service's span count from an ``OTLPReceiver``.

    Waits for ``expected`` spans, but stops early once the count holds still: a processor that lost
    spans without counting them would otherwise cost the whole wait.
    """

    def received(service: str, expected: int) -> int:
        deadline = time.monotonic() + _RECEIVE_WAIT_SECONDS
        count: int = stats().services.get(service, 0)
        while count < expected and time.monotonic() < deadline:
            time.sleep(_RECEIVE_POLL_SECONDS)
            previous, count = count, stats().services.get(service, 0)
            if count == previous:
                break
        return count

    return received
