"""Under gevent, a greenlet that spills a request waits for the spiller's lock by letting the other greenlets run.

The replay thread, a real OS thread, holds that lock while it lists the spill directory at the end of each pass, which
takes a while on a slow disk (a network filesystem, or a directory a long outage filled). A greenlet that ends a span
meanwhile behind ``SimpleSpanProcessor`` spills it, then looks for the replay thread under that lock. Measured before
the lock paused cooperatively: a 10 ms ticker greenlet did not tick once during a 2 s listing (the wait blocked the
main OS thread, hub included, for the whole listing); after, 190 and 191 times in two runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.apps import clean_env, started_app
from tests.helpers.receivers import serve_http

pytest.importorskip("gevent")

pytestmark = pytest.mark.timeout(60)

APP = """
from gevent import monkey

monkey.patch_all()
import sys, time

import gevent
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from spanbatch.exporter import OTLPSpanExporter

endpoint, spill_dir = sys.argv[1:]
blocking_sleep = monkey.get_original("time", "sleep")
exporter = OTLPSpanExporter(endpoint=endpoint, timeout=0.5, spill_dir=spill_dir)
store = exporter._spiller.store
list_files = store.pending
listing = []  # "listing", then "listed": the replay thread's first listing, under the spiller's lock


def slow_first_listing():
    if listing:
        return list_files()
    listing.append("listing")
    blocking_sleep(2)  # the slow disk: this OS thread only
    files = list_files()
    listing.append("listed")
    return files


store.pending = slow_first_listing
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("app")
tracer.start_span("first").end()  # the backend is down: spilled after the retries, and the replay thread starts
deadline = time.monotonic() + 20
while not listing and time.monotonic() < deadline:
    gevent.sleep(0.01)
ticks_while_listing = []


def tick():
    while True:
        gevent.sleep(0.01)
        ticks_while_listing.append(listing[-1] == "listing")


ticker = gevent.spawn(tick)
began_while = listing[-1] if listing else "never listed"
tracer.start_span("second").end()  # straight to disk, then a look for the replay thread under the spiller's lock
ended_while = listing[-1]
ticker.kill()
print(began_while, ended_while, sum(ticks_while_listing), exporter.spill_counts().spilled, flush=True)
provider.shutdown()
"""


def test_a_greenlet_spilling_while_the_replay_thread_lists_lets_a_ticker_run(tmp_path: Path) -> None:
    with serve_http(down=True) as backend, started_app(APP, backend.endpoint, str(tmp_path), env=clean_env()) as app:
        out, err = app.communicate(timeout=45)
    assert app.returncode == 0, err
    began_while, ended_while, ticks, spilled = out.split()
    # The second span's spill came while the replay thread held the lock, and waited for it.
    assert (began_while, ended_while) == ("listing", "listed"), out
    assert int(ticks) > 0, out  # the ticker ran while that span waited for the lock
    assert int(spilled) == 2, out
