"""Once a backend comes back from an outage, the requests spilled during it reach it oldest first.

The replay thread probes the backend while it is down, each probe with the oldest file. A probe the backend did
not answer (its port closed: the connection refused) says nothing of that file, so however many probes the outage
met, no file is passed over for them, as a file the backend answered "busy" to is (see
``test_spill_keeps_a_file_the_backend_is_always_busy_for``). Real exporters, a real receiver in its own process;
each request's spans carry its number in their name, and the receiver keeps names in the order they arrived.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import spanbatch
from spanbatch._spill import PASS_OVER_AFTER, Sent, SpillStore
from spanbatch.exporter import _spilling
from spanbatch.testing import OTLPReceiver

from tests.helpers import provider_with, wait_until
from tests.helpers.spill import spilling_exporter

pytestmark = pytest.mark.timeout(120)

FILES = 5
SPANS_PER_FILE = 3


def test_files_spilled_in_an_outage_arrive_oldest_first_however_many_probes_it_met(
    down_receiver: OTLPReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shutdown_later: Callable[[Any], Any]
) -> None:
    rx = down_receiver
    probes: list[int] = []  # replay passes that met the outage: each probed the backend with the oldest file
    replay = SpillStore.replay

    def counted(store: SpillStore, send: Callable[[bytes], Sent], *args: Any) -> int:
        delivered = replay(store, send, *args)
        probes.append(delivered)
        return delivered

    monkeypatch.setattr(SpillStore, "replay", counted)
    # Probes ten times as often as by default (the backoff doubles from there): the outage meets as many in a tenth
    # of the time.
    monkeypatch.setattr(_spilling, "FIRST_PROBE_SECONDS", _spilling.FIRST_PROBE_SECONDS / 10)
    processor = shutdown_later(spanbatch.BatchSpanProcessor(spilling_exporter(rx, tmp_path)))
    tracer = provider_with(processor).get_tracer("tests")
    for n in range(FILES):  # one request, so one file, each
        for _ in range(SPANS_PER_FILE):
            tracer.start_span(f"file-{n}").end()
        assert processor.force_flush(30_000)
    assert processor.stats().spilled == FILES * SPANS_PER_FILE
    # More probes than it takes to pass a file over for "busy".
    assert wait_until(lambda: len(probes) > PASS_OVER_AFTER, 30)
    assert not any(probes)
    rx.set_behaviour("ok")
    assert rx.wait_for_spans(FILES * SPANS_PER_FILE, timeout=60)
    assert list(rx.span_names()) == [f"file-{n}" for n in range(FILES)]
    assert rx.stats().duplicates == 0
