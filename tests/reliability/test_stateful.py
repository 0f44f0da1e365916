"""Hypothesis drives a processor (threads ending spans, flushes, failing and slow exporters, shutdown)
against a simple model; the accounting invariant is checked after every step."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch import BatchSpanProcessor, SpanStats

from tests.helpers import balanced, end_spans, provider_with, run_in_threads

MODES = ("ok", "fail", "raise", "slow")


class ModeExporter(SpanExporter):
    """Does what ``mode`` says for each batch, and counts spans by outcome."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.succeeded = 0
        self.failed = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        mode = self.mode
        if mode == "slow":
            time.sleep(0.005)
        if mode == "fail":
            self.failed += len(spans)
            return SpanExportResult.FAILURE
        if mode == "raise":
            self.failed += len(spans)
            raise RuntimeError("exporter failure injected by the state machine")
        self.succeeded += len(spans)
        return SpanExportResult.SUCCESS


class ProcessorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.exporter = ModeExporter()
        # A small queue and batch, so overflow and partial batches happen within a few steps.
        self.processor = BatchSpanProcessor(
            self.exporter, max_queue_size=64, max_export_batch_size=16, schedule_delay_millis=5
        )
        self.provider = provider_with(self.processor)
        self.ended = 0
        self.is_shutdown = False
        self.last = self.processor.stats()

    @rule(threads=st.integers(1, 4), per_thread=st.integers(0, 120))
    def end_from_threads(self, threads: int, per_thread: int) -> None:
        run_in_threads([functools.partial(end_spans, self.provider, per_thread)] * threads, timeout=30)
        self.ended += threads * per_thread

    @rule(mode=st.sampled_from(MODES))
    def set_exporter_mode(self, mode: str) -> None:
        self.exporter.mode = mode

    @rule()
    def flush(self) -> None:
        flushed = self.processor.force_flush(10_000)
        stats = self.processor.stats()
        if self.is_shutdown:
            assert flushed is False
            return
        assert flushed is True
        # Quiescent: everything ended so far is exported or dropped, and the exporter agrees.
        assert stats.queued == stats.in_flight == 0
        assert stats.exported == self.exporter.succeeded
        assert stats.dropped["export_failed"] == self.exporter.failed

    @rule()
    def flush_with_a_tiny_deadline(self) -> None:
        # May well time out; it must return promptly, and the books must balance anyway.
        started = time.monotonic()
        self.processor.force_flush(1)
        assert time.monotonic() - started < 1.0

    @precondition(lambda self: not self.is_shutdown)
    @rule()
    def shutdown(self) -> None:
        self.exporter.mode = "ok"  # a 30 s deadline would not be at risk anyway; keep the step fast
        self.processor.shutdown()
        self.is_shutdown = True
        stats = self.processor.stats()
        assert stats.queued == stats.in_flight == 0
        assert stats.exported == self.exporter.succeeded

    @invariant()
    def books_balance(self) -> None:
        stats = self.processor.stats()
        assert balanced(stats)
        assert stats.enqueued == self.ended
        assert_never_decreases(self.last, stats)
        if not self.is_shutdown:
            assert stats.dropped["shutdown"] == 0
        self.last = stats

    def teardown(self) -> None:
        self.processor.shutdown()


def assert_never_decreases(before: SpanStats, after: SpanStats) -> None:
    assert after.enqueued >= before.enqueued
    assert after.exported >= before.exported
    assert after.batches >= before.batches
    for reason, count in before.dropped.items():
        assert after.dropped[reason] >= count, (reason, before, after)


ProcessorMachine.TestCase.settings = settings(
    # `nox -s soak` raises this to run for minutes instead of seconds.
    max_examples=int(os.environ.get("SPANBATCH_SOAK_EXAMPLES", "60")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestProcessorMachine = pytest.mark.timeout(600)(ProcessorMachine.TestCase)
