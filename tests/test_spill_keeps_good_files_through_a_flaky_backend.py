"""A backend that answers "busy" (429/503, ``UNAVAILABLE``) to some requests at random, an overloaded collector
behind a load balancer, refuses no request for its own sake: every file is delivered in the end, none is
moved aside as one "the backend will not take"."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from spanbatch._spill import Sent, SpillStore

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("busy", [0.5, 0.7])
def test_a_backend_busy_at_random_gets_every_file_in_the_end(tmp_path: Path, busy: float) -> None:
    store = SpillStore(tmp_path, 1 << 30)
    for n in range(200):
        assert store.write(b"file%d" % n, 1)
    chance = random.Random(0)

    def flaky(_: bytes) -> Sent:
        return Sent.RETRY_LATER if chance.random() < busy else Sent.DELIVERED

    passes = 0
    while store.pending() and passes < 5000:
        store.replay(flaky)
        passes += 1
    assert store.counts().corrupt == 0
    assert store.counts().replayed == 200
