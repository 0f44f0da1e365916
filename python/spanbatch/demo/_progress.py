"""A plain-text progress bar on stderr, redrawn by a background thread."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

_WIDTH = 30
_REDRAW_SECONDS = 0.2


class Progress:
    """Draws ``label [#####.....] done/total unit  elapsed`` until closed; ``phase`` changes the suffix."""

    def __init__(self, label: str, total: int, done: Callable[[], int], stream: TextIO | None = None) -> None:
        self._label = label
        self._total = max(1, total)
        self._done = done
        self._stream = sys.stderr if stream is None else stream
        # A pipe or a file gets only the final line: carriage returns would fill it with copies.
        self._live = self._stream.isatty()
        self._phase = ""
        self._started = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._redraw, name="spanbatch-demo-progress", daemon=True)

    def phase(self, text: str) -> None:
        self._phase = text
        self._draw()

    def _line(self) -> str:
        done = min(self._done(), self._total)
        filled = _WIDTH * done // self._total
        bar = "#" * filled + "." * (_WIDTH - filled)
        elapsed = time.perf_counter() - self._started
        return f"{self._label:<10} [{bar}] {done}/{self._total} sessions {elapsed:5.1f} s {self._phase}"

    def _draw(self) -> None:
        if self._live:
            self._stream.write("\r\x1b[K" + self._line())
            self._stream.flush()

    def _redraw(self) -> None:
        while not self._stop.wait(_REDRAW_SECONDS):
            self._draw()

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._stream.write(("\r\x1b[K" if self._live else "") + self._line() + "\n")
        self._stream.flush()
