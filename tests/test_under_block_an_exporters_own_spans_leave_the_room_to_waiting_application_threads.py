"""Under ``drop_policy="block"``, the room an export makes belongs to the application threads waiting for it. An
exporter that ends spans of its own into its lane (an instrumented client inside it) ends them on the export thread,
holding the GIL, while the waiters are still waking: its spans took each slot first, and every application span
waited its whole block timeout, then was dropped. Measured at 138978f with a block timeout of 1 s: 2 threads ended
100 spans in 48 s, 92 of them dropped, while 35,000 of the exporter's own went out; under gevent (a greenlet waits
between tries from Python) 2 greenlets' 40 spans took 10 s at 500 ms, 32 dropped. Now the exporter's own span is the
one refused (``queue_full``) while the waiters need the room; the stock processor, which never waits, keeps both in
its queue as room allows."""

from __future__ import annotations

import json

import pytest

from tests.helpers import ReportedStats, balanced
from tests.helpers.apps import clean_env, run_app

pytestmark = pytest.mark.timeout(120)

PRODUCERS = 2
SPANS_EACH = 20

APP = """
import sys

if sys.argv[1] == "greenlets":
    from gevent import monkey

    monkey.patch_all()
import json
import threading
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from spanbatch import BatchSpanProcessor

PRODUCERS, SPANS_EACH = int(sys.argv[2]), int(sys.argv[3])


# Ends, on each export, as many spans into its own lane as it was given: a loop that never runs dry.
class EndsSpansOfItsOwn(SpanExporter):
    def __init__(self):
        self.tracer = None
        self.names = []

    def export(self, spans):
        self.names.extend(span.name for span in spans)
        for _ in spans:
            self.tracer.start_span("own").end()
        time.sleep(0.002)
        return SpanExportResult.SUCCESS


exporter = EndsSpansOfItsOwn()
provider = TracerProvider()
processor = BatchSpanProcessor(
    exporter,
    max_queue_size=8,
    max_export_batch_size=4,
    schedule_delay_millis=1,
    drop_policy="block",
    block_timeout_millis=2000,
)
provider.add_span_processor(processor)
exporter.tracer = provider.get_tracer("exporter")
tracer = provider.get_tracer("app")


def application():
    for _ in range(SPANS_EACH):
        tracer.start_span("app").end()


if sys.argv[1] == "greenlets":
    import gevent

    gevent.joinall([gevent.spawn(application) for _ in range(PRODUCERS)])
else:
    threads = [threading.Thread(target=application) for _ in range(PRODUCERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
provider.shutdown()
s = processor.stats()
print(json.dumps({
    "app": exporter.names.count("app"),
    "sent": len(exporter.names),
    "stats": [s.enqueued, s.exported, s.queued, s.in_flight, dict(s.dropped)],
}), flush=True)
"""


@pytest.mark.parametrize("producers", ["threads", "greenlets"])
def test_waiting_producers_get_the_room_an_export_makes(producers: str) -> None:
    if producers == "greenlets":
        pytest.importorskip("gevent")
    done = run_app(APP, producers, str(PRODUCERS), str(SPANS_EACH), env=clean_env(), timeout=100)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    stats = ReportedStats(*result["stats"])
    assert result["app"] == PRODUCERS * SPANS_EACH, (result, done.stderr[-2000:])
    assert balanced(stats), stats
    assert stats.exported == result["sent"]
    # The exporter's own spans were the ones refused for room, and counted.
    assert stats.dropped["queue_full"] > 0
