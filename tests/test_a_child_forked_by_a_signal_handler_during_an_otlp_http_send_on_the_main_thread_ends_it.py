"""A signal handler that forks (a pre-fork master starting a worker when told to) may run while the main thread
waits for an OTLP/HTTP send (``SimpleSpanProcessor``, ``export()`` by hand): the send runs on a helper thread so
that Ctrl-C works, and the main thread waits for it in a lock wait, which runs signal handlers. The child goes on in
that wait, without the helper thread: it must still come out of it within the exporter's timeout, as the stock
child does (its ``requests`` goes on reading the socket it shares with its parent until the timeout).
"""

from __future__ import annotations

import os
import socket

import pytest

from tests.helpers.apps import clean_env, run_app

pytestmark = [pytest.mark.timeout(90), pytest.mark.skipif(os.name != "posix", reason="POSIX signals and fork")]

TIMEOUT_SECONDS = 2  # the exporter's
CHILD_WAIT_SECONDS = 15.0  # how long the parent waits for its child before it calls it hung

APP = """
import os, signal, sys, threading, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

if sys.argv[1] == "stock":
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
else:
    from spanbatch.exporter import OTLPSpanExporter
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[2], timeout={timeout})))
forked = []
signal.signal(signal.SIGUSR1, lambda signum, frame: forked.append(os.fork()))
threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGUSR1)).start()  # the send waits for its answer by then
with provider.get_tracer("app").start_as_current_span("waits"):
    pass
if forked == [0]:
    os.write(1, b"child returned\\n")
    os._exit(0)
for _ in range(int({child_wait} * 10)):
    if os.waitpid(forked[0], os.WNOHANG)[0]:
        break
    time.sleep(0.1)
else:
    os.kill(forked[0], signal.SIGKILL)
    os.waitpid(forked[0], 0)
    print("child hung", flush=True)
print("parent returned", flush=True)
"""


@pytest.mark.parametrize("exporter", ["stock", "spanbatch"])
def test_the_child_comes_out_of_the_send_within_the_timeout(exporter: str) -> None:
    # A listener that never accepts: the kernel completes the connection and takes the request, nobody answers.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}/v1/traces"
        program = APP.format(timeout=TIMEOUT_SECONDS, child_wait=CHILD_WAIT_SECONDS)
        done = run_app(program, exporter, endpoint, env=clean_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == ["child returned", "parent returned"], done.stdout + done.stderr
