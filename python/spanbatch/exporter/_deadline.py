"""One export's deadline, shared by every part and retry of it.

The stock exporters send a batch as one request within one ``timeout``; spanbatch's may cut it into parts and
resume after a first attempt made in Rust. Each part, and each stock retry of it, gets what is left of the one
deadline: a fresh timeout per part would stretch the export (and the exit that waits on it) part after part.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock an export must not outlast."""

    at: float

    @classmethod
    def after(cls, timeout: float, spent: float = 0.0) -> Deadline:
        """``timeout`` seconds from now, less the ``spent`` seconds an earlier attempt of the export already took."""
        return cls(time.monotonic() + timeout - spent)

    def left(self) -> float:
        """The seconds left, never negative (a stock client given none times out as its own would)."""
        return max(0.0, self.at - time.monotonic())
