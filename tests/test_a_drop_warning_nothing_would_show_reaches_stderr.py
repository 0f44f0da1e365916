"""A spanbatch warning that no handler would show reaches stderr, as Python's last-resort handler writes a warning
where no handler is set up at all.

Found by review (revB30): zero-code logging puts an OpenTelemetry ``LoggingHandler`` on the root logger, often the
only handler. A log lane's full-queue warning went there, into the very lane that was full (or onto its export
thread, which takes none of its own lines): it reached neither stderr nor the backend. 3 threads logging 3,000
records each into a queue of 256 lost 7,976 (SDK handler) and 4,456 (instrumentation-logging's), and nothing said so
but ``stats()``. (The stock processor is as silent.) Each case is a child process: logging's set-up is process-wide.
"""

from __future__ import annotations

import pytest

from tests.helpers.apps import clean_env, run_app

pytestmark = pytest.mark.timeout(60)

# {handlers} sets up logging, where spanbatch's lines go; the application's records are emitted to the SDK's logger.
# The lane's queue fills while its only export waits, then the export goes on.
APP = """
import logging, threading, warnings
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
import spanbatch

gate, entered = threading.Event(), threading.Event()

class Gated(LogRecordExporter):
    def export(self, batch):
        entered.set()
        gate.wait(10)
        return LogRecordExportResult.SUCCESS

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30_000):
        return True

provider = LoggerProvider(shutdown_on_exit=False)
processor = spanbatch.BatchLogRecordProcessor(Gated(), max_queue_size=4, max_export_batch_size=4)
provider.add_log_record_processor(processor)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    bridge = LoggingHandler(logger_provider=provider)
root = logging.getLogger()
root.setLevel(logging.INFO)
{handlers}
app = provider.get_logger("app")
app.emit(LogRecord(body="first"))
processor.force_flush(0)
entered.wait(10)
for i in range(50):
    app.emit(LogRecord(body=f"record {{i}}"))
gate.set()
processor.force_flush(10_000)
provider.shutdown()
print("dropped", processor.stats().dropped["queue_full"], flush=True)
"""


@pytest.mark.parametrize(
    ("handlers", "shown"),
    [
        ("root.addHandler(bridge)", True),  # the OpenTelemetry handler alone: written to stderr
        ("", True),  # no handler at all: logging's last resort writes it, as before
        ("logging.basicConfig(format='app: %(message)s'); root.addHandler(bridge)", True),  # the app's shows it
        ("root.addHandler(bridge); logging.lastResort = None", False),  # the app asked for nothing on stderr
    ],
    ids=["only-opentelemetry", "none", "app-handler", "no-last-resort"],
)
def test_a_full_queue_is_told_on_stderr_once_where_nothing_else_shows_it(handlers: str, shown: bool) -> None:
    done = run_app(APP.format(handlers=handlers), env=clean_env(), timeout=50)
    assert done.returncode == 0, done.stderr
    dropped = int(done.stdout.split()[-1])
    assert dropped > 0, done.stdout
    told = [line.removeprefix("app: ") for line in done.stderr.splitlines() if "queue full — dropped" in line]
    assert bool(told) == shown, done.stderr
    assert len(set(told)) == len(told), done.stderr  # each line once: never by two handlers
    assert sum(int(line.split("dropped ")[1].split()[0]) for line in told) == (dropped if shown else 0)
