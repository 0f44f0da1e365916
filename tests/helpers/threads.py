"""Running work on several threads at once, and waiting for a condition without a fixed sleep."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence


def run_in_threads(targets: Sequence[Callable[[], object]], timeout: float = 60.0) -> None:
    """Runs each target on a thread of its own, all at once; fails unless every one is done within ``timeout`` s."""
    threads = [threading.Thread(target=target, daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"{len(stuck)} of {len(threads)} threads still running after {timeout:g} s"


def wait_until(predicate: Callable[[], object], timeout: float = 10.0) -> bool:
    """Polls ``predicate`` every 5 ms; False if ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True
