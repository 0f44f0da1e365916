"""Fixtures for the benchmarks; their helpers live in ``tests.benchmarks.contenders``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from spanbatch.testing import OTLPReceiver


@pytest.fixture(scope="session")
def receiver() -> Iterator[OTLPReceiver]:
    """One loopback OTLP/HTTP receiver in its own process, shared by the benchmarks that need one."""
    with OTLPReceiver("http") as rx:
        yield rx
