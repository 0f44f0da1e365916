"""The reliability suite: what belongs here is written in tests/README.md. Its one hook gates the slow soaks."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Slow soak tests run only when asked for by marker (``-m slow``), never by default.
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow soak test: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
