"""A stray ``.spill`` file whose name starts with characters ``str.isdigit`` takes for digits but ``int`` does not
(superscripts) is not a write stamp: a write next to it stores its payload, it does not raise."""

from __future__ import annotations

from pathlib import Path

import pytest
from spanbatch._spill import SpillStore

pytestmark = pytest.mark.timeout(30)


def test_a_write_next_to_a_file_named_with_superscript_digits_is_stored(tmp_path: Path) -> None:
    store = SpillStore(tmp_path, 1_000_000)
    (tmp_path / ("\u00b2" * 20 + "-1-00000000.spill")).write_bytes(b"stray")
    assert store.write(b"payload", 3)
    assert store.counts().spilled == 3
