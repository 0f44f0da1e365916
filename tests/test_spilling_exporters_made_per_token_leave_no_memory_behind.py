"""An application that makes a spilling exporter per credential (a rotating token, one per tenant) and shuts each
down leaves nothing of them in memory. The headers are part of the spill directory's name, and each directory
was a key, for good, of the registry through which a spiller hands its files to a live one of its directory
(revT: 2,000 exporters left 2,000 keys, 3.5 MB). Counted as the objects the collector tracks, which each key added
to (the interpreter's table of interned path parts grows too, a string per directory, as without spanbatch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.apps import clean_env, run_app

pytestmark = pytest.mark.timeout(120)

APP = """
import gc
import sys

from spanbatch.exporter import OTLPSpanExporter

directory, count = sys.argv[1], int(sys.argv[2])


def made_and_shut_down(first, last):
    for token in range(first, last):
        exporter = OTLPSpanExporter(
            endpoint="http://127.0.0.1:9/v1/traces", headers={"authorization": f"Bearer {token}"}, spill_dir=directory
        )
        exporter.shutdown()
        del exporter
    gc.collect()


made_and_shut_down(0, 20)  # what the first ones load and cache for good
before = len(gc.get_objects())
made_and_shut_down(20, 20 + count)
print(len(gc.get_objects()) - before, flush=True)
"""

EXPORTERS = 300


def test_spilling_exporters_made_and_shut_down_per_token_are_freed_whole(tmp_path: Path) -> None:
    done = run_app(APP, str(tmp_path), str(EXPORTERS), env=clean_env(), timeout=100)
    assert done.returncode == 0, done.stderr
    retained = int(done.stdout.strip().splitlines()[-1])
    assert retained < EXPORTERS // 10, retained
