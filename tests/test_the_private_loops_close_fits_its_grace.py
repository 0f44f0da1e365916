"""The private loop's close (``PrivateLoop.close``) cancels the tasks an async exporter left running, then closes its
async generators, all within ``CANCEL_GRACE_SECONDS``. A task that ignored its cancellation used to take the whole
grace, and the generators then got none: their cleanup never ran to its end."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import AsyncIterator
from contextlib import suppress

import pytest
from spanbatch._core import BatchCore
from spanbatch._export import CANCEL_GRACE_SECONDS, PrivateLoop

# The close's own work beside the grace, on a loaded machine.
SLACK_SECONDS = 2.0


@pytest.mark.timeout(60)
def test_a_task_that_ignores_its_cancellation_leaves_the_async_generators_time_to_close() -> None:
    released = threading.Event()
    generator_closed = threading.Event()
    left_running: list[object] = []

    async def stubborn() -> None:
        while not released.is_set():
            with suppress(asyncio.CancelledError):  # what the test is about: a cancellation ignored
                await asyncio.sleep(0.05)

    async def ticker() -> AsyncIterator[None]:
        try:
            while True:
                yield
        finally:
            await asyncio.sleep(0.05)  # a cleanup that awaits, as closing a stream would
            generator_closed.set()

    async def export() -> None:
        ticks = ticker()
        left_running.extend((asyncio.create_task(stubborn()), ticks))
        await ticks.__anext__()

    loop = PrivateLoop(BatchCore(8, 1000, 4))
    try:
        loop.run(export(), 10_000)
        started = time.monotonic()
        loop.close()
        took = time.monotonic() - started
    finally:
        released.set()
        # The task given up stays pending in its closed loop: it goes here, not in the middle of a later test.
        left_running.clear()
        gc.collect()
    assert generator_closed.is_set()
    assert took < CANCEL_GRACE_SECONDS + SLACK_SECONDS, took
