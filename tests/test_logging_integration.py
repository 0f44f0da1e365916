"""BatchLogRecordProcessor under the stdlib ``logging`` module's own life cycle: handlers flushed by
``logging.shutdown()`` or replaced by ``dictConfig`` while a back end hangs, with the exit still bounded."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.timeout(120)

EXIT_TIMEOUT_MILLIS = 1000
# Teardown after the exit deadline, on a loaded machine; far below the SDK's 30 s flush that held the exit.
SLACK_SECONDS = 5.0

# The SDK's LoggingHandler.flush (which logging.shutdown and dictConfig call) runs the provider's
# force_flush() (30 s by default) on a non-daemon thread, which the interpreter joins before atexit.
APP = """
import logging, logging.config, sys, threading, time
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from spanbatch import BatchLogRecordProcessor

started = threading.Event()

class Hanging(LogRecordExporter):
    def export(self, batch):
        started.set()
        threading.Event().wait()
        return LogRecordExportResult.SUCCESS

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True

provider = LoggerProvider()
provider.add_log_record_processor(BatchLogRecordProcessor(Hanging(), schedule_delay_millis=10))
logging.getLogger().addHandler(LoggingHandler(logger_provider=provider))
logging.getLogger("app").warning("exported, never returns")
started.wait(10)
logging.getLogger("app").warning("queued behind it")
{reset}
print("main done at", repr(time.time()), flush=True)
"""

RESETS = {
    "logging.shutdown": "logging.shutdown()",
    "dictConfig": 'logging.config.dictConfig({"version": 1, "root": {"handlers": []}})',
}


@pytest.mark.parametrize("reset", sorted(RESETS))
def test_a_handler_flush_during_a_hung_export_cannot_hold_the_exit_past_its_deadline(reset: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPANBATCH_"))}
    env["SPANBATCH_EXIT_TIMEOUT_MS"] = str(EXIT_TIMEOUT_MILLIS)
    done = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", textwrap.dedent(APP.format(reset=RESETS[reset]))],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )
    ended = time.time()
    assert done.returncode == 0, done.stderr
    main_done = next(line for line in done.stdout.splitlines() if line.startswith("main done at"))
    seconds = ended - float(main_done.split()[-1])
    assert seconds < EXIT_TIMEOUT_MILLIS / 1000 + SLACK_SECONDS, (seconds, done.stderr)
