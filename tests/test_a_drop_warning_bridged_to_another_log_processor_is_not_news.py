"""A LoggingHandler on the root logger hands spanbatch's own lines to every log processor of its provider, not only
to the one that logged them: another log processor, another log lane of a pipeline, or a log processor beside a span
processor. Where that processor is shut down the line is dropped there (``shutdown``) and counted; told as one more
dropped log record it would be a loss that never happened, so it is not (the stock processors log one INFO line for
a record given after shutdown, whatever their number). The application's own records are told, once per processor."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(60)

AFTER_SHUTDOWN = textwrap.dedent(
    """
    import logging, sys, warnings
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
    import spanbatch

    def balanced(s):
        return s.enqueued == s.exported + s.spilled + s.queued + s.in_flight + s.dropped_total

    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(logging.StreamHandler(sys.stderr))
    provider = LoggerProvider(shutdown_on_exit=False)
    if sys.argv[1] == "pipeline":
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        owner = spanbatch.install(
            TracerProvider(shutdown_on_exit=False),
            {name: InMemorySpanExporter() for name in "abc"},
            logger_provider=provider,
            log_exporters={name: InMemoryLogRecordExporter() for name in "abc"},
        )
        processors = [owner.logs]
    else:
        processors = [spanbatch.BatchLogRecordProcessor(InMemoryLogRecordExporter()) for _ in range(3)]
        for processor in processors:
            provider.add_log_record_processor(processor)
        owner = provider
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        root.addHandler(LoggingHandler(logger_provider=provider))
    owner.shutdown()
    logging.getLogger("app").warning("the one application record")
    stats = [processor.stats() for processor in processors]
    print("shutdown", sum(s.dropped["shutdown"] for s in stats), "balanced", all(balanced(s) for s in stats))
    """
)

SPAN_WARNING = textwrap.dedent(
    """
    import logging, sys, warnings
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    import spanbatch

    def balanced(s):
        return s.enqueued == s.exported + s.spilled + s.queued + s.in_flight + s.dropped_total

    class Down(SpanExporter):
        def export(self, spans):
            return SpanExportResult.FAILURE

    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(logging.StreamHandler(sys.stderr))
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(spanbatch.BatchSpanProcessor(Down()))
    logs = InMemoryLogRecordExporter()
    log_processor = spanbatch.BatchLogRecordProcessor(logs)
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    logger_provider.add_log_record_processor(log_processor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        root.addHandler(LoggingHandler(logger_provider=logger_provider))
    tracer = tracer_provider.get_tracer("app")
    for i in range(20):
        with tracer.start_as_current_span(f"span {i}"):
            logging.getLogger("app").info("app line %d", i)
    # The order of the providers' exit hooks, the logger provider made last: its processor is shut down first.
    logger_provider.shutdown()
    tracer_provider.shutdown()
    stats = log_processor.stats()
    print("exported", len(logs.get_finished_logs()), "shutdown", stats.dropped["shutdown"], "balanced", balanced(stats))
    """
)


def run(app: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", app, *args], capture_output=True, text=True, timeout=50, check=True)


def told(stderr: str, item: str) -> list[int]:
    return [int(count) for count in re.findall(rf"— dropped (\d+) {item}", stderr)]


@pytest.mark.parametrize("shape", ["processors", "pipeline"])
def test_one_record_logged_after_shutdown_is_told_once_by_each_of_three_log_processors(shape: str) -> None:
    done = run(AFTER_SHUTDOWN, shape)
    assert told(done.stderr, "log record") == [1, 1, 1], done.stderr
    # Every echo is counted all the same: the application's record three times, and the lines that came back.
    counted = re.search(r"shutdown (\d+) balanced True", done.stdout)
    assert counted is not None, done.stdout + done.stderr
    assert int(counted.group(1)) > 3


def test_a_span_processors_warning_at_exit_is_not_told_as_a_dropped_log_record() -> None:
    done = run(SPAN_WARNING)
    assert told(done.stderr, "spans") == [20], done.stderr
    assert told(done.stderr, "log record") == [], done.stderr
    counted = re.search(r"exported 20 shutdown (\d+) balanced True", done.stdout)
    assert counted is not None, done.stdout + done.stderr
    assert int(counted.group(1)) >= 1  # the span processor's warning, given to the shut-down log processor
