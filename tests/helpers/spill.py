"""Spill store helpers shared by the spill tests."""

from __future__ import annotations

from spanbatch._spill import Sent, SpillStore


def replayed(store: SpillStore) -> list[bytes]:
    """The payloads one replay pass of ``store`` hands to a backend that takes everything, in order."""
    got: list[bytes] = []

    def send(data: bytes) -> Sent:
        got.append(data)
        return Sent.DELIVERED

    store.replay(send)
    return got
