"""A lock (or condition) of the calling process's own, for state that forked children share.

A lock another thread of the parent held at a ``fork()`` stays held in the child for ever, and a fork made
from C (uWSGI) runs none of the hooks that could replace it. So each process makes its own on first use.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    """``get()`` returns this process's object, made by ``make`` the first time a thread of it asks."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._by_pid: dict[int, T] = {}

    def get(self) -> T:
        pid = os.getpid()
        found = self._by_pid.get(pid)
        # setdefault is atomic: threads that race each make one, and all get the one stored first.
        return self._by_pid.setdefault(pid, self._make()) if found is None else found
