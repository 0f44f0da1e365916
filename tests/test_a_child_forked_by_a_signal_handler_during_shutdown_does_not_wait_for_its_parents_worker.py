"""A signal handler that forks may run while the main thread waits in ``shutdown()`` for a worker still in its export
(spanbatch's waits run signal handlers, so that Ctrl-C works). The child goes on in that same wait, for a thread its
process does not have: it must end at once, as a join in a freshly forked child does, not wait out the shutdown's
whole deadline (it did: 20.0 s, the parent's worker done after 1 s; under gevent too), as the flush's and the HTTP
send's waits already end.
"""

from __future__ import annotations

import os

import pytest

from tests.helpers.fork_in_a_signal_handler import Threads, forked_by_a_signal_handler_during

pytestmark = [pytest.mark.timeout(90), pytest.mark.skipif(os.name != "posix", reason="POSIX signals and fork")]

SHUTDOWN_DEADLINE_SECONDS = 20.0


@pytest.mark.parametrize("threads", ["threading", "gevent"])
def test_the_childs_shutdown_ends_at_once_and_the_parent_exports_its_span(threads: Threads) -> None:
    if threads == "gevent":
        pytest.importorskip("gevent")
    told = forked_by_a_signal_handler_during("shutdown", SHUTDOWN_DEADLINE_SECONDS, threads)
    assert told.parent == ["None", "1"], told.output
    returned, seconds = told.child
    assert returned == "None", told.output
    # Not a speed: its whole deadline is what it waited before, for a thread it does not have.
    assert float(seconds) < SHUTDOWN_DEADLINE_SECONDS / 2, told.output
