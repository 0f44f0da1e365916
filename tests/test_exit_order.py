"""Exit is bounded by SPANBATCH_EXIT_TIMEOUT_MS whatever order the processor and provider were built in.

The README's own Usage snippet builds the processor before the ``TracerProvider``, so the provider's
atexit shutdown (registered later, run earlier) would wait ``export_timeout_millis`` on a dead or
hanging backend before spanbatch's bounded exit hook ever ran.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from spanbatch.testing import OTLPReceiver

pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="the README snippet uses the OTLP/HTTP exporter")

pytestmark = pytest.mark.timeout(120)

README = Path(__file__).resolve().parent.parent / "README.md"
EXIT_TIMEOUT_MILLIS = 1000
# Interpreter start-up is not timed; teardown after the exit hook, and a loaded CI machine, are.
SLACK_SECONDS = 2.0
SPANS = 100

# Appended to the app: spans still queued at exit, and the moment the main module ended.
ENDS_SPANS = f"""
import time as _time
_tracer = trace.get_tracer("exit-order")
for _ in range({SPANS}):
    _tracer.start_span("queued").end()
print("main done at", repr(_time.time()), flush=True)
"""


def readme_usage_snippet() -> str:
    """The first Python block under the README's "Usage" heading, exactly as written."""
    match = re.search(r"^## Usage\n.*?```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)
    assert match, "README.md has no ```python block under ## Usage"
    return match.group(1)


@pytest.fixture
def dead_endpoint() -> str:
    """A 127.0.0.1 port nobody listens on: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(params=["dead", "hanging"])
def bad_endpoint(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_endpoint"))


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPANBATCH_"))}
    env.update(extra, SPANBATCH_EXIT_TIMEOUT_MS=str(EXIT_TIMEOUT_MILLIS))
    return env


def exit_seconds(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Seconds from the end of the app's main module to the end of its process."""
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90, check=False)
    exited_at = time.time()
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    main_done = re.search(r"^main done at (\S+)$", done.stdout, re.M)
    assert main_done, (done.stdout, done.stderr)
    return exited_at - float(main_done.group(1)), done


def test_readme_usage_snippet_is_extracted_as_written() -> None:
    snippet = readme_usage_snippet()
    # The order that matters here: the processor exists before the provider does.
    assert snippet.index("BatchSpanProcessor(") < snippet.index("TracerProvider()")
    assert "trace.set_tracer_provider(provider)" in snippet


def test_readme_usage_snippet_exits_within_the_exit_timeout(bad_endpoint: str) -> None:
    code = readme_usage_snippet() + ENDS_SPANS
    seconds, done = exit_seconds([sys.executable, "-c", code], clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=bad_endpoint))
    assert "SpanStats(" in done.stdout  # the snippet's own print ran
    # The exporter alone would retry for its 10 s timeout; the provider would wait 30 s for it.
    assert seconds < EXIT_TIMEOUT_MILLIS / 1000 + SLACK_SECONDS, (seconds, done.stderr)


@pytest.mark.skipif(shutil.which("opentelemetry-instrument") is None, reason="needs opentelemetry-instrument")
@pytest.mark.parametrize("exporter", ["otlp_proto_http", "otlp_proto_grpc"])
def test_zero_code_run_exits_within_the_exit_timeout(bad_endpoint: str, exporter: str) -> None:
    if exporter == "otlp_proto_grpc":
        pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc")
    instrument = shutil.which("opentelemetry-instrument")
    assert instrument is not None
    app = "from opentelemetry import trace\n" + textwrap.dedent(ENDS_SPANS)
    env = clean_env(
        OTEL_PYTHON_CONFIGURATOR="spanbatch",
        OTEL_TRACES_EXPORTER=exporter,
        # Only spans are spanbatch's: the metrics and logs pipelines would wait on the same dead backend.
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_EXPORTER_OTLP_ENDPOINT=bad_endpoint,
    )
    seconds, done = exit_seconds([instrument, sys.executable, "-c", app], env)
    assert seconds < EXIT_TIMEOUT_MILLIS / 1000 + SLACK_SECONDS, (seconds, done.stderr)


def test_a_span_ended_in_an_atexit_hook_registered_after_the_provider_is_exported() -> None:
    """As with the stock processor: the provider's shutdown runs after this hook, and exports its span."""
    hook = textwrap.dedent(
        """
        import atexit
        atexit.register(lambda: trace.get_tracer("exit-order").start_span("from atexit").end())
        """
    )
    code = readme_usage_snippet() + hook + ENDS_SPANS
    with OTLPReceiver("http") as receiver:
        seconds, done = exit_seconds(
            [sys.executable, "-c", code], clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.port}")
        )
        assert receiver.wait_for_spans(SPANS + 1), (receiver.span_names(), done.stderr)
        assert receiver.span_names() == {"queued": SPANS, "from atexit": 1}
    assert seconds < EXIT_TIMEOUT_MILLIS / 1000 + SLACK_SECONDS, (seconds, done.stderr)


# What stock exports from these apps, spanbatch must export too: exit shuts down what it is asked to.
_COUNTING = """
import atexit, sys, threading, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
if sys.argv[1] == "stock":
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
else:
    from spanbatch import BatchSpanProcessor

class Count(SpanExporter):
    def __init__(self):
        self.n = 0
    def export(self, spans):
        self.n += len(spans)
        return SpanExportResult.SUCCESS
"""

_NON_DAEMON_THREAD = """
main = Count()
atexit.register(lambda: print("exported", main.n, flush=True))
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(main))
tracer = provider.get_tracer("t")

own = BatchSpanProcessor(Count())  # the job's own (CPython 3.12+ starts no thread once main is done)

def job():
    time.sleep(0.2)  # the main thread has returned: the interpreter waits for this thread
    own.shutdown()
    for _ in range(20):
        tracer.start_span("after").end()

threading.Thread(target=job).start()
"""

_TWO_PROVIDERS = """
first = Count()
atexit.register(lambda: print("exported", first.n, flush=True))
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(first))
# The app's own exit hook, registered after the provider: it runs before the provider's shutdown.
atexit.register(lambda: provider.get_tracer("t").start_span("goodbye").end())
other = TracerProvider()  # e.g. another library's provider, built later
other.add_span_processor(BatchSpanProcessor(Count()))
"""


@pytest.mark.parametrize("processor", ["stock", "spanbatch"])
@pytest.mark.parametrize(("app", "spans"), [(_NON_DAEMON_THREAD, 20), (_TWO_PROVIDERS, 1)], ids=["thread", "providers"])
def test_exit_exports_what_stock_exports(app: str, spans: int, processor: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _COUNTING + app, processor],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"exported {spans}\n" in done.stdout, (done.stdout, done.stderr)
