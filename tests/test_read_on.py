"""Reading on: an application emitting large records faster than one request can be sent.

The worker of an exporter that takes several batches per call reads the next batches before it
sends, while sending would let the queue overflow first: such a burst then loses none of what the
queue and those batches hold, at the default drop policy.

The pace counts the records that came while the worker waited for them or sent the batches before, not only
those that came while it read: a loop that never lets go of the GIL lets none arrive while the worker reads
(that alone lost 280 of 600 in 1 run in 2 beside two busy CPUs, and once alone in CI). The burst either lets
the worker have the GIL now and then (a millisecond every 16 records) or never does. After an idle spell longer
than the schedule delay, the worker's window for the batch it holds runs from the burst's first record, not from
when it began to wait (which ended reading on at once: 280 of 600 lost in every run).
A pause in the middle of a batch does not slow the pace the burst goes on at after it (the last test).

The worker reads on when records come fast enough to fill half the queue's free room in the time it expects a
request to take: as it has sent nothing yet, a request of 1 MB or more at 25 MB/s (``test_read_on_a_slow_backend.py``
has it learn from a send, and tests that figure); the receiver here never answers while the loop runs, so every record
must be read on or lost. The margin is in the sizes: 200 KB records, batches of 16 (3.2 MB: 26 ms at a gigabit) and a
queue of 64 read on from about 1,250 records a second at a gigabit (250 at 25 MB/s), and the loop makes 7,000-10,000
(measured, the worker's reading included). With 50 KB
records in batches of 64 and a queue of 256 the threshold was 3,800 a second: a process given a third of one CPU
(pinned beside two busy ones) lost 280 of 600 in 3 runs of 6, as once in CI on a slow machine; with these sizes it
lost none in 10 such runs.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from spanbatch.exporter import OTLPLogExporter
from spanbatch.testing import OTLPReceiver

from tests.helpers.logs import ChatEvents, assert_held_burst_delivered, chat_events_to

pytestmark = [pytest.mark.timeout(120), pytest.mark.alone]  # a burst: the worker must be scheduled during it
Later = Callable[[Any], Any]  # the ``shutdown_later`` fixture

BATCH, QUEUE = 16, 64
RECORDS = 150  # more than the queue and one batch, less than the queue and eight batches
BODY = "x" * 200_000  # a batch is 3.2 MB: tens of ms to send, while the loop makes one in a few


NEVER = RECORDS  # the record from which the loop lets go of the GIL now and then


def held_events(
    receiver: OTLPReceiver, shutdown_later: Later, *, queue: int, batch: int, delay_millis: int
) -> ChatEvents:
    """Chat events to ``receiver``, which holds every request until the burst is over; shut down when the test ends.

    The heap is collected before the burst: a full collection of what earlier tests left (the suite's own heap) in the
    middle of a 20 ms burst would read as a slow loop; an application's own pauses are the README's "a machine too
    busy to run the loop"."""
    receiver.set_behaviour("hang")
    events = chat_events_to(
        OTLPLogExporter(endpoint=receiver.log_endpoint), queue=queue, batch=batch, delay_millis=delay_millis
    )
    shutdown_later(events.processor)
    gc.collect()
    return events


@pytest.mark.parametrize(
    ("idle", "lets_go_from"),
    [(0.0, 0), (0.0, NEVER), (1.2, BATCH)],
    ids=["lets-go-of-the-gil", "never-lets-go", "after-an-idle-spell-longer-than-the-delay"],
)
def test_a_burst_of_large_records_is_held_while_the_first_request_is_out(
    http_receiver: OTLPReceiver, shutdown_later: Later, idle: float, lets_go_from: int
) -> None:
    events = held_events(http_receiver, shutdown_later, queue=QUEUE, batch=BATCH, delay_millis=1000)
    logger = events.logger
    time.sleep(idle)  # the worker waits for a first record meanwhile
    for i in range(RECORDS):
        logger.emit(body=BODY, event_name="gen_ai.choice", attributes={"i": i})
        if i >= lets_go_from and i % 16 == 15:
            time.sleep(0.001)
    assert_held_burst_delivered(
        events,
        release=partial(http_receiver.set_behaviour, "ok"),  # the hung request is retried
        delivered=partial(http_receiver.wait_for_log_records, RECORDS, timeout=30),
    )


# A burst that pauses once its worker has read part of a batch (the application waits on a model's answer, or a full
# collection holds the GIL): batches of 128 read 32 at a time, 50 KB records (6.4 MB) and a queue of 256 read on from
# about 440 records a second (2,500 at a gigabit). Averaged over a pause of 1 s, the first batch came at about 130 a
# second; counted so, it was sent alone and left 100 records without room in every run (6 of 6, with a 0.3 s pause
# and a gigabit). The burst goes on at several thousand a second after the pause, when the worker may wait for a CPU
# and the GIL while a whole chunk or more comes.
PAUSED_BATCH, PAUSED_QUEUE = 128, 256
BEFORE_PAUSE = 40  # a chunk of 32 read, 8 more queued
PAUSED_RECORDS = 484  # the queue, one batch and 100 more: less than the queue and eight batches
PAUSED_BODY = "y" * 50_000


def test_a_burst_that_paused_mid_batch_is_read_on_at_its_pace_after_the_pause(
    http_receiver: OTLPReceiver, shutdown_later: Later
) -> None:
    events = held_events(http_receiver, shutdown_later, queue=PAUSED_QUEUE, batch=PAUSED_BATCH, delay_millis=5000)
    logger = events.logger
    for i in range(PAUSED_RECORDS):
        logger.emit(body=PAUSED_BODY, event_name="gen_ai.choice", attributes={"i": i})
        if i == BEFORE_PAUSE - 1:
            time.sleep(1.0)
    assert_held_burst_delivered(
        events,
        release=partial(http_receiver.set_behaviour, "ok"),  # the hung request is retried
        delivered=partial(http_receiver.wait_for_log_records, PAUSED_RECORDS, timeout=30),
    )
