"""Running a function in a forked child, by Python's ``os.fork`` or from C as uWSGI does, and reading its report."""

from __future__ import annotations

import ctypes
import json
import os
import random
import select
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

CHILD_TIMEOUT = 30.0


def libc_fork() -> int:
    """Fork from C as uWSGI does: none of Python's fork hooks run. PyDLL keeps the GIL held.

    CPython survives such a fork only if no other thread is queued for the GIL at that
    instant (a hookless child never re-initialises the GIL's condition variable), so give
    workers woken by recent spans time to go back to their wait, which is detached.
    """
    time.sleep(0.2)
    pid = int(ctypes.PyDLL(None).fork())
    if pid == 0:
        # Python reseeds ``random`` only in its own fork hooks; without this the child would
        # generate the parent's next span ids. The id generator is not what is under test.
        random.seed()
    return pid


def start_child(body: Callable[[], dict[str, Any]], fork: Callable[[], int] = os.fork) -> tuple[int, int]:
    """Runs ``body`` in a forked child; returns (pid, fd of the pipe its JSON result comes back on)."""
    read_end, write_end = os.pipe()
    pid = fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        try:
            os.close(read_end)
            payload = json.dumps(body())
        except BaseException as error:
            payload, code = json.dumps({"error": repr(error)}), 1
        try:
            os.write(write_end, payload.encode())
        finally:
            os._exit(code)
    os.close(write_end)
    return pid, read_end


def collect_child(pid: int, read_end: int, timeout: float = CHILD_TIMEOUT) -> dict[str, Any]:
    """The child's result; kills it and fails if it takes longer than ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(f"forked child {pid} did not finish within {timeout:g} s")
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
    _, status = os.waitpid(pid, 0)
    # A child that died before it reported (a signal, say): its exit status says how.
    no_result = json.dumps({"error": f"no result (exit status {os.waitstatus_to_exitcode(status)})"}).encode()
    result: dict[str, Any] = json.loads(b"".join(chunks) or no_result)
    assert "error" not in result, result
    assert os.waitstatus_to_exitcode(status) == 0
    return result


def in_child(
    body: Callable[[], dict[str, Any]], fork: Callable[[], int] = os.fork, timeout: float = CHILD_TIMEOUT
) -> dict[str, Any]:
    """Runs ``body`` in a forked child and returns what it reported; kills it if it hangs."""
    return collect_child(*start_child(body, fork), timeout)
