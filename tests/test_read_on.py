"""Reading on: an application emitting large records faster than one request can be sent.

The worker of an exporter that takes several batches per call reads the next batches before it
sends, while sending would let the queue overflow first: a tight loop then loses none of what the
queue and those batches hold, at the default drop policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk._logs import LoggerProvider
from spanbatch.exporter import OTLPLogExporter
from spanbatch.testing import OTLPReceiver

from tests.helpers import balanced

pytestmark = [pytest.mark.timeout(120), pytest.mark.alone]  # a tight loop: the worker must be scheduled during it
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture

BATCH, QUEUE = 64, 256
RECORDS = 600  # more than the queue and one batch, less than the queue and eight batches
BODY = "x" * 50_000  # a batch is 3.2 MB: tens of ms to send, while the loop makes one in a few


def test_a_tight_loop_of_large_records_is_held_while_the_first_request_is_out(
    http_receiver: OTLPReceiver, shutdown_later: Later
) -> None:
    http_receiver.set_behaviour("hang")  # every request waits until the loop is over
    exporter = OTLPLogExporter(endpoint=http_receiver.log_endpoint)
    processor = shutdown_later(
        spanbatch.BatchLogRecordProcessor(exporter, max_queue_size=QUEUE, max_export_batch_size=BATCH)
    )
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(processor)
    logger = provider.get_logger("opentelemetry.instrumentation.openai_v2")
    for i in range(RECORDS):
        logger.emit(body=BODY, event_name="gen_ai.choice", attributes={"i": i})
    stats = processor.stats()
    http_receiver.set_behaviour("ok")  # the hung request is retried
    assert processor.force_flush(60_000)
    assert sum(stats.dropped.values()) == 0, stats
    assert http_receiver.wait_for_log_records(RECORDS, timeout=30)
    assert balanced(processor.stats())
    provider.shutdown()
