"""A forked child starts its spill store's counts at zero: the evictions its parent had not yet warned about
(rate-limited) are the parent's to report, not the child's, whose warning would name files it never evicted."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from spanbatch import _spill
from spanbatch._spill import Sent, SpillStore
from spanbatch._spill_file import encode

pytestmark = pytest.mark.timeout(30)

FILE = len(encode(b"x" * 100, 1))


def test_a_forked_child_does_not_report_its_parents_unreported_evictions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_spill, "EVICTION_REPORT_SECONDS", 0.2)
    store = SpillStore(tmp_path, 2 * FILE)
    for _ in range(4):  # two evictions: the first is warned about, the second waits for the interval
        assert store.write(b"x" * 100, 5)
    pid = os.fork()
    if pid == 0:  # the child: 1 if it warns about an eviction, 0 if not
        said: list[str] = []
        handler = logging.Handler()
        handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
        logging.getLogger("spanbatch").addHandler(handler)
        time.sleep(0.3)
        store.replay(lambda _payload: Sent.RETRY_LATER)
        os._exit(int(any("evicted" in line for line in said)))
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child warned about its parent's eviction"
