"""Spill store helpers shared by the spill tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spanbatch._spill import Sent, SpillStore
from spanbatch.testing import OTLPReceiver


def replayed(store: SpillStore) -> list[bytes]:
    """The payloads one replay pass of ``store`` hands to a backend that takes everything, in order."""
    got: list[bytes] = []

    def send(data: bytes) -> Sent:
        got.append(data)
        return Sent.DELIVERED

    store.replay(send)
    return got


def spilling_exporter(rx: OTLPReceiver, spill_dir: Path | None, **kwargs: Any) -> Any:
    """spanbatch's span exporter for ``rx``'s protocol, spilling to ``spill_dir`` (1 s timeout unless given)."""
    kwargs.setdefault("timeout", 1)
    if rx.protocol == "http":
        from spanbatch.exporter import OTLPSpanExporter  # noqa: PLC0415

        return OTLPSpanExporter(endpoint=rx.endpoint, spill_dir=spill_dir, **kwargs)
    from spanbatch.exporter.grpc import OTLPSpanExporter as GrpcExporter  # noqa: PLC0415

    return GrpcExporter(endpoint=rx.endpoint, insecure=True, spill_dir=spill_dir, **kwargs)


def spill_files(root: Path) -> list[Path]:
    return sorted(root.glob("*/*.spill"))
