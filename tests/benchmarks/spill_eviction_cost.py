"""A spill write that evicts, with many files stored: ``python -m tests.benchmarks.spill_eviction_cost``.

A long outage over a small cap: every write evicts the oldest file. For 200, 2,000 and 20,000 files already in
the directory (written directly, as an earlier process left them), 200 writes of 1 KB each: milliseconds per
write (fsync included) and listings of a directory (``os.scandir`` calls) per write. Not a test: it asserts
nothing about time.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from spanbatch._spill import SUFFIX, SpillStore
from spanbatch._spill_file import encode

PAYLOAD = b"x" * 1000
WRITES = 200


def measure(files: int) -> tuple[float, float]:
    """Milliseconds and listings per evicting write, with ``files`` stored."""
    data = encode(PAYLOAD, 1)
    with tempfile.TemporaryDirectory() as root:
        directory = Path(root)
        for n in range(files):
            (directory / f"{n + 1:020d}-1-{n:08d}{SUFFIX}").write_bytes(data)
        store = SpillStore(directory, files * len(data))
        listings = 0
        scandir = os.scandir

        def counted(*args: Any) -> Any:
            nonlocal listings
            listings += 1
            return scandir(*args)

        os.scandir = counted  # type: ignore[assignment]
        try:
            began = time.perf_counter()
            for _ in range(WRITES):
                assert store.write(PAYLOAD, 1)
            took = time.perf_counter() - began
        finally:
            os.scandir = scandir
        assert store.counts().evicted == WRITES
    return took / WRITES * 1e3, listings / WRITES


def main() -> None:
    for files in (200, 2_000, 20_000):
        ms, listings = measure(files)
        print(f"{files:6d} files: {ms:7.2f} ms per evicting write, {listings:.1f} listings per write")


if __name__ == "__main__":
    main()
