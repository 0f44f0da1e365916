"""A signal handler that logs, landing while the main thread is inside one of spanbatch's locks, goes on: the handler
runs on that thread, and a lock it takes again there would wait for itself for ever.

* One of spanbatch's lines (``logged``), while the main thread logs one: ``own_lines`` books the lines a root
  ``LoggingHandler`` hands back to log lanes, in a registry of those lanes.
* After ``provider.shutdown()``, while the application goes on logging through a handler on the root logger that hands
  its lines to the provider: each record is refused by every log processor, which books and tells its drops under
  its drop reporter's lock, and the handler's line, the application's or spanbatch's, is refused there too. The stock
  processor takes no lock there.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import textwrap

import pytest

from tests.helpers.apps import clean_env

pytestmark = pytest.mark.timeout(60)

# SIGUSR1 every 0.2 ms for about 2 s, from another process, while the main thread books lines over and over.
APP = """
import faulthandler, logging, os, signal, subprocess, sys, time
from opentelemetry.sdk._logs.export import ConsoleLogExporter
from spanbatch import BatchLogRecordProcessor
from spanbatch._own_lines import own_lines
from spanbatch._safe_log import logged

faulthandler.dump_traceback_later(20, exit=True)
processors = [BatchLogRecordProcessor(ConsoleLogExporter()) for _ in range(20)]
handled = 0

def handler(*_):
    global handled
    handled += 1
    logged(logging.getLogger("spanbatch").debug, "a line from a signal handler")

signal.signal(signal.SIGUSR1, handler)
storm = subprocess.Popen([sys.executable, "-c", (
    "import os, signal, time\\n"
    f"for _ in range(10000):\\n    os.kill({os.getpid()}, signal.SIGUSR1); time.sleep(0.0002)"
)])
deadline = time.monotonic() + 10
while storm.poll() is None and time.monotonic() < deadline:
    with own_lines():
        pass
storm.wait()
print(f"went on, {handled} signals handled", flush=True)
"""


def test_a_signal_handler_that_logs_while_spanbatch_logs_does_not_deadlock() -> None:
    done = run(APP)
    assert "went on" in done.stdout


# PROCESSORS log processors shut down behind a handler on the root logger that hands each line to them, as the SDK's
# LoggingHandler does (not that one: SDK 1.45's looks its logger up per line under a lock of its own, which a signal
# handler's line waits for as well, with the stock processors too). The application logs on, and another process
# sends SIGUSR1, each up to 0.5 ms after the handler for the one before has answered (handlers never pile up, however
# slow the machine), up to 1500 or for 2 s. The handler logs HANDLER_LINE. spanbatch's lines go to stderr too.
PROCESSORS = 3
AFTER_SHUTDOWN_APP = """
import faulthandler, json, logging, os, signal, subprocess, sys, time
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from spanbatch import BatchLogRecordProcessor
from spanbatch._safe_log import logged

faulthandler.dump_traceback_later(20, exit=True)
provider = LoggerProvider(shutdown_on_exit=False)
processors = [BatchLogRecordProcessor(InMemoryLogRecordExporter()) for _ in range(PROCESSORS)]
for processor in processors:
    provider.add_log_record_processor(processor)

class Bridge(logging.Handler):
    def __init__(self):
        super().__init__()
        self.logger = provider.get_logger("bridge")

    def emit(self, record):
        self.logger.emit(LogRecord(body=record.getMessage(), severity_number=SeverityNumber.WARN))

root = logging.getLogger()
root.addHandler(Bridge())
root.setLevel(logging.INFO)
logging.getLogger("spanbatch").addHandler(logging.StreamHandler(sys.stderr))
provider.shutdown()
app = logging.getLogger("app")
handled = 0
answers, answered = os.pipe()

def handler(*_):
    global handled
    handled += 1
    HANDLER_LINE
    os.write(answered, b".")

signal.signal(signal.SIGUSR1, handler)
storm = subprocess.Popen([sys.executable, "-c", (
    "import os, random, select, signal, sys, time\\n"
    "end = time.monotonic() + 2\\n"
    "for _ in range(1500):\\n"
    f"    os.kill({os.getpid()}, signal.SIGUSR1)\\n"
    f"    if not select.select([{answers}], [], [], 5)[0] or time.monotonic() > end:\\n"
    "        sys.exit()\\n"
    f"    os.read({answers}, 1)\\n"
    "    time.sleep(random.random() / 2000)"
)], pass_fds=[answers])
started = time.monotonic()
logged_records = 0
while storm.poll() is None and time.monotonic() < started + 10:
    logged_records += 1
    app.info("working %d", logged_records)
storm.wait()
handled_before_stats = handled  # a signal still on its way is handled later: counted in stats() or not
stats = [processor.stats() for processor in processors]
print(json.dumps({
    "handled": handled_before_stats,
    "logged": logged_records,
    "seconds": time.monotonic() - started,
    "stats": [[s.enqueued, s.exported, s.queued, s.in_flight, dict(s.dropped)] for s in stats],
}), flush=True)
"""
TOLD = re.compile(r"shut down — dropped (\d+) log records?")


@pytest.mark.parametrize(
    ("handler_line", "a_record"),
    [
        pytest.param('app.warning("got SIGUSR1")', True, id="the-applications"),
        pytest.param('logged(logging.getLogger("spanbatch").warning, "a spanbatch line")', False, id="spanbatchs"),
    ],
)
def test_a_signal_handler_that_logs_while_the_application_logs_after_shutdown_does_not_deadlock(
    handler_line: str, *, a_record: bool
) -> None:
    done = run(AFTER_SHUTDOWN_APP.replace("PROCESSORS", str(PROCESSORS)).replace("HANDLER_LINE", handler_line))
    ran = json.loads(done.stdout)
    assert ran["handled"] > 0
    # Each record is refused by every processor, and so is each of spanbatch's lines handed back (no news).
    records = ran["logged"] + (ran["handled"] if a_record else 0)
    for enqueued, exported, queued, in_flight, dropped in ran["stats"]:
        assert enqueued == exported + queued + in_flight + sum(dropped.values())
        assert dropped["shutdown"] >= records
    told = [int(count) for count in TOLD.findall(done.stderr)]
    # Every record the main thread logged is told, and none twice: a handler's call that lands in a drop reporter's
    # bookkeeping leaves its drops to the next report, exit's at the latest. (A record of the handler's that lands
    # while spanbatch logs a line of its own is taken for one of spanbatch's: counted, not told.) In one line per
    # processor at its first refusal, one per interval (10 s) after it, and one at exit.
    assert PROCESSORS * ran["logged"] <= sum(told) <= PROCESSORS * records
    assert PROCESSORS <= len(told) <= PROCESSORS * (2 + math.ceil(ran["seconds"] / 10))


def run(app: str) -> subprocess.CompletedProcess[str]:
    """``app`` run to its end; a hang ends it by faulthandler's timer, with the main thread's traceback on stderr."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(app)],
        capture_output=True,
        text=True,
        timeout=50,
        env=clean_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done
