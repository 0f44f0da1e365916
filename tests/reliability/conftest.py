"""Fixtures and the slow-test gate for the reliability suite (helpers live in reliability_helpers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from spanbatch.testing import OTLPReceiver

PROTOCOLS = ("http", "grpc")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Slow soak tests run only when asked for by marker (``-m slow``), never by default.
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow soak test: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=PROTOCOLS)
def receiver(request: pytest.FixtureRequest) -> Iterator[OTLPReceiver]:
    with OTLPReceiver(request.param) as rx:
        yield rx
