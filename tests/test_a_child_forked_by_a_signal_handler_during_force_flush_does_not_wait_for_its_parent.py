"""A signal handler that forks (a pre-fork master starting a worker when told to) may run while the main thread
waits in ``force_flush``: spanbatch's waits run signal handlers, so that Ctrl-C works. The child then goes on in
that same wait. What it waited for is its parent's to export: the child never exports the parent's spans, and its
own lane, made at the fork, holds nothing from before the call. So the child's flush ends at once, as a flush
called in a freshly forked child does (it waited out its whole timeout on the parent's core and returned False;
the stock child, which goes on with the export its parent had begun, returns True once that export returns).
"""

from __future__ import annotations

import os

import pytest

from tests.helpers.fork_in_a_signal_handler import forked_by_a_signal_handler_during

pytestmark = [pytest.mark.timeout(90), pytest.mark.skipif(os.name != "posix", reason="POSIX signals and fork")]

FLUSH_TIMEOUT_SECONDS = 20.0


def test_the_childs_flush_ends_at_once_and_the_parents_exports_its_span() -> None:
    told = forked_by_a_signal_handler_during("force_flush", FLUSH_TIMEOUT_SECONDS)
    assert told.parent == ["True", "1"], told.output
    flushed, seconds = told.child
    assert flushed == "True", told.output
    # Not a speed: its whole timeout is what it waited before, for spans it will never export.
    assert float(seconds) < FLUSH_TIMEOUT_SECONDS / 2, told.output
