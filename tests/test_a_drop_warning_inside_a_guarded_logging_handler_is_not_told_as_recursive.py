"""A drop warning spanbatch logs while a logging handler emits (a record handed to a log processor shut down, told at
once) reaches opentelemetry-instrumentation-logging's ``LoggingHandler`` on the root as any line does. That handler
guards against records logged inside its own ``emit`` with a context variable and, for each, writes
"LoggingHandler.emit detected recursive logging, skipping to prevent deadlock." to stderr: zero-code logging with a
backend down at exit printed it in 4 of 4 runs (revU; stock logs its after-shutdown line at INFO, filtered first).
spanbatch's warning is logged in a context of its own, so the guard does not take it for recursion; spanbatch's own
guard keeps the line from coming back into the shut-down processor as news (it is counted). The handler here is that
one's guard around the SDK's ``LoggingHandler``."""

from __future__ import annotations

import pytest

from tests.helpers.apps import clean_env, run_app

pytestmark = pytest.mark.timeout(60)

APP = """
import contextvars
import logging
import sys
import warnings

warnings.simplefilter("ignore")  # the SDK's LoggingHandler is deprecated

import spanbatch
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

emitting = contextvars.ContextVar("emitting", default=False)


class Guarded(LoggingHandler):
    def emit(self, record):
        if emitting.get():
            sys.stderr.write("LoggingHandler.emit detected recursive logging\\n")
            return
        token = emitting.set(True)
        try:
            super().emit(record)
        finally:
            emitting.reset(token)


provider = LoggerProvider(shutdown_on_exit=False)
processor = spanbatch.BatchLogRecordProcessor(InMemoryLogRecordExporter())
provider.add_log_record_processor(processor)
logging.getLogger().addHandler(Guarded(logger_provider=provider))
told = logging.StreamHandler(sys.stdout)
logging.getLogger("spanbatch").addHandler(told)
processor.shutdown()
logging.getLogger("app").warning("after shutdown")
s = processor.stats()
print("dropped", dict(s.dropped)["shutdown"], flush=True)
"""


def test_the_drop_warning_is_told_and_not_taken_for_recursion() -> None:
    done = run_app(APP, env=clean_env(), timeout=50)
    assert done.returncode == 0, done.stderr
    assert "recursive" not in done.stderr, done.stderr
    assert "shut down — dropped 1 log record" in done.stdout, done.stdout
    # The record, and the warning that came back into the handler (counted, not news).
    assert "dropped 2" in done.stdout, done.stdout
