"""A signal handler that forks (a pre-fork master starting a worker when told to) may run while the main thread
waits for an OTLP/HTTP send (``SimpleSpanProcessor``, ``export()`` by hand): the send runs on a helper thread so
that Ctrl-C works, and the main thread waits for it in a lock wait, which runs signal handlers. The child goes on in
that wait, without the helper thread: it must still come out of it within the exporter's timeout, as the stock
child does (its ``requests`` goes on reading the socket it shares with its parent until the timeout). It comes out
with a failed result (``ForkedDuringSendError``): the send, and the batch, are the parent's, which goes on waiting for
its answer. With a spill directory, the child must not store that batch as undelivered: a stored copy would be
replayed (by either process, or the next one on the directory), so the backend would get it twice.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from spanbatch.exporter import OTLPSpanExporter

from tests.helpers.apps import clean_env, run_app
from tests.helpers.receivers import serve_http

pytestmark = [pytest.mark.timeout(90), pytest.mark.skipif(os.name != "posix", reason="POSIX signals and fork")]

# The main thread sends one span while a signal handler forks; each process says when it is out of the send (with a
# spill directory, also how many batches it spilled). Arguments: the exporter ("stock" or "spanbatch"), its endpoint
# and timeout, spanbatch's spill directory ("" for none).
APP = """
import os, signal, sys, threading, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

kind, endpoint, timeout, spill_dir = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
if kind == "stock":
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=timeout)
else:
    from spanbatch.exporter import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=timeout, spill_dir=spill_dir or None)
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))

def returned(who):
    spilled = ", spilled %d" % exporter.spill_counts().spilled if spill_dir else ""
    return "%s returned%s\\n" % (who, spilled)

forked = []
signal.signal(signal.SIGUSR1, lambda signum, frame: forked.append(os.fork()))
threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGUSR1)).start()  # the send waits for its answer by then
with provider.get_tracer("app").start_as_current_span("waits"):
    pass
if forked == [0]:
    os.write(1, returned("child").encode())
    os._exit(0)
for _ in range(150):  # the parent waits 15 s for its child before it calls it hung
    if os.waitpid(forked[0], os.WNOHANG)[0]:
        break
    time.sleep(0.1)
else:
    os.kill(forked[0], signal.SIGKILL)
    os.waitpid(forked[0], 0)
    print("child hung", flush=True)
provider.shutdown()
print(returned("parent"), end="", flush=True)
"""


def run_forking_app(
    exporter: str, endpoint: str, timeout: float, spill_dir: str = ""
) -> subprocess.CompletedProcess[str]:
    return run_app(APP, exporter, endpoint, str(timeout), spill_dir, env=clean_env(), timeout=60)


@pytest.mark.parametrize("exporter", ["stock", "spanbatch"])
def test_the_child_comes_out_of_the_send_within_the_timeout(exporter: str) -> None:
    # A listener that never accepts: the kernel completes the connection and takes the request, nobody answers.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        done = run_forking_app(exporter, f"http://127.0.0.1:{silent.getsockname()[1]}/v1/traces", timeout=2)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == ["child returned", "parent returned"], done.stdout + done.stderr


def test_with_a_spill_directory_the_child_spills_nothing_and_the_backend_gets_the_batch_once(tmp_path: Path) -> None:
    with serve_http() as backend:
        backend.delay = 1.5  # the answer comes after the fork: the parent's send delivers the batch
        done = run_forking_app("spanbatch", backend.endpoint, timeout=10, spill_dir=str(tmp_path))
        assert done.returncode == 0, done.stderr
        assert sorted(done.stdout.splitlines()) == ["child returned, spilled 0", "parent returned, spilled 0"], (
            done.stdout + done.stderr
        )
        # What a later process on the directory replays: nothing (its first probe comes within 0.5 s).
        backend.delay = 0.0
        later = OTLPSpanExporter(endpoint=backend.endpoint, timeout=2, spill_dir=tmp_path)
        threading.Event().wait(2.0)
        later.shutdown()
        assert len(backend.received) == 1
