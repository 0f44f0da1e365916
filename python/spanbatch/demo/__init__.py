"""``python -m spanbatch demo``: the stock processor and spanbatch on the same synthetic agent workload."""

from __future__ import annotations

from spanbatch.demo._cli import main

__all__ = ["main"]
