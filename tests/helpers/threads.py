"""Running work on several threads at once, and waiting for a condition without a fixed sleep."""

from __future__ import annotations

import re
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


# On CPython 3.12 the SDK's LoggingHandler.flush, which logging.shutdown calls at exit, starts a thread
# and fails ("can't create new thread at interpreter shutdown"); the interpreter prints that traceback
# whichever processor is in use (the stock one too). Not spanbatch's: tests looking for tracebacks skip it.
_SDK_FLUSH_AT_EXIT = re.compile(
    r"Exception ignored in atexit callback: <function shutdown at 0x[0-9a-f]+>\n"
    r"Traceback \(most recent call last\):\n(?:  .*\n)*?RuntimeError: can't create new thread at interpreter shutdown\n"
)


def without_sdk_flush_at_exit(stderr: str) -> str:
    """``stderr`` less the SDK's own LoggingHandler-flush traceback at a 3.12 interpreter's exit."""
    return _SDK_FLUSH_AT_EXIT.sub("", stderr)
