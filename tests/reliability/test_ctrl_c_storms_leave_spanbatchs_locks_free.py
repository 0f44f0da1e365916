"""The main suite's Ctrl-C storm (``tests/test_a_ctrl_c_landing_in_a_take_or_let_go_of_spanbatchs_locks_leaves_them_
free.py``) at 30 times the interrupts, 5 times under gevent (whose check of the lock after each waits for a thread by
pausing 5 ms at a time: 3000 there took 20 s): each KeyboardInterrupt followed by another thread taking the lock. Before
spanbatch's locks took and let go in one native call, about 1 landing in 3 left one held."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.ctrl_c import ctrl_c_storm

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("lock_of", ["store", "spiller"])
@pytest.mark.parametrize(("patched", "interrupts"), [("plain", 3000), ("gevent", 500)])
def test_thousands_of_ctrl_cs_landing_around_spanbatchs_locks_leave_them_free(
    tmp_path: Path, patched: str, interrupts: int, lock_of: str
) -> None:
    if patched == "gevent":
        pytest.importorskip("gevent")
    said = ctrl_c_storm(patched=patched, lock_of=lock_of, directory=tmp_path, interrupts=interrupts)
    assert said == f"{interrupts} interrupts, the lock free after each"
