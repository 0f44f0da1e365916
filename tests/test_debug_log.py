"""SPANBATCH_DEBUG=true shows one line per export on stderr, whatever the app did with logging.

Each case is a child process, as logging's configuration is process-wide: the child counts its
exporter's calls and the test counts the debug lines on its stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(60)

# {before} runs before the processor is built, {after} once it is; the last export fails, so the
# processor's drop warning is written at shutdown.
CHILD = """
import logging, sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch import BatchSpanProcessor

class Counting(SpanExporter):
    calls = 0
    def export(self, spans):
        Counting.calls += 1
        return SpanExportResult.FAILURE if Counting.calls == 3 else SpanExportResult.SUCCESS

{before}
processor = BatchSpanProcessor(Counting(), max_export_batch_size=10, schedule_delay_millis=60_000)
{after}
provider = TracerProvider(shutdown_on_exit=False)
provider.add_span_processor(processor)
tracer = provider.get_tracer("debug")
for i in range(30):
    tracer.start_span("s").end()
    if i % 10 == 9:
        assert processor.force_flush(10_000)
processor.shutdown()
print("exports", Counting.calls, flush=True)
"""

EXPORT_LINE = "Counting export: batch="
DROP_WARNING = "export failed — dropped 10 spans"


def run_child(before: str = "", after: str = "", debug: str | None = "true") -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPANBATCH_"))}
    if debug is not None:
        env["SPANBATCH_DEBUG"] = debug
    code = CHILD.format(before=textwrap.dedent(before), after=textwrap.dedent(after))
    argv = [sys.executable, "-c", code]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=45, check=False)
    assert done.returncode == 0, done.stderr
    exports = int(done.stdout.split()[-1])
    assert exports == 3, done.stdout
    return exports, done.stderr


def test_without_logging_configured_each_export_has_one_line_on_stderr() -> None:
    exports, stderr = run_child()
    assert stderr.count(EXPORT_LINE) == exports, stderr
    # Warnings still show, once, as they do without SPANBATCH_DEBUG.
    assert stderr.count(DROP_WARNING) == 1, stderr


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING"])
def test_with_logging_configured_first_each_export_has_one_line(level: str) -> None:
    exports, stderr = run_child(before=f"logging.basicConfig(level=logging.{level}, format='app %(message)s')")
    # Through the app's own handler and format, not also through spanbatch's.
    assert stderr.count("app " + EXPORT_LINE) == exports, stderr
    assert stderr.count(EXPORT_LINE) == exports, stderr
    assert stderr.count(DROP_WARNING) == 1, stderr


def test_with_logging_configured_after_the_processor_each_export_has_one_line() -> None:
    exports, stderr = run_child(after="logging.basicConfig(format='app %(message)s')")
    assert stderr.count("app " + EXPORT_LINE) == exports, stderr
    assert stderr.count(EXPORT_LINE) == exports, stderr
    assert stderr.count(DROP_WARNING) == 1, stderr


def test_a_handler_on_the_spanbatch_logger_alone_gets_each_line_once() -> None:
    exports, stderr = run_child(
        before="""
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("mine %(message)s"))
        logging.getLogger("spanbatch").addHandler(handler)
        """
    )
    assert stderr.count("mine " + EXPORT_LINE) == exports, stderr
    assert stderr.count(EXPORT_LINE) == exports, stderr


def test_with_only_the_sdks_logging_handler_each_export_has_one_line_on_stderr() -> None:
    # Zero-code logging auto-instrumentation puts the SDK's LoggingHandler on the root: it exports records, it does
    # not show them; the lines asked for still reach stderr (and go out as log records too).
    exports, stderr = run_child(
        before="""
        from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
        logging.getLogger().addHandler(LoggingHandler(logger_provider=LoggerProvider()))
        """
    )
    assert stderr.count(EXPORT_LINE) == exports, stderr


@pytest.mark.parametrize("debug", [None, "false"])
def test_without_debug_there_are_no_export_lines_and_warnings_show_as_before(debug: str | None) -> None:
    _, stderr = run_child(debug=debug)
    assert EXPORT_LINE not in stderr, stderr
    assert stderr.count(DROP_WARNING) == 1, stderr
