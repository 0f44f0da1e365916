"""Which opentelemetry releases are installed, for the few stock behaviours that changed between the
releases spanbatch supports: the one way spanbatch tells them apart, decided once per process."""

from __future__ import annotations

import re
from importlib import metadata

OTLP_ENCODER = "opentelemetry-exporter-otlp-proto-common"


def installed_version(distribution: str) -> tuple[int, ...] | None:
    """The numbers of ``distribution``'s version, each part's leading digits (``1.46.0rc1``: ``(1, 46, 0)``); None
    when it is not installed or its version does not start with two numbers."""
    try:
        parts = metadata.version(distribution).split(".")
    except metadata.PackageNotFoundError:
        return None
    numbers = []
    for part in parts:
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        numbers.append(int(digits.group()))
        if len(digits.group()) < len(part):
            break
    return tuple(numbers) if len(numbers) >= 2 else None


def installed_release(distribution: str) -> tuple[int, int] | None:
    """``(major, minor)`` of ``distribution``; None when it is not installed or its version is not numeric."""
    version = installed_version(distribution)
    return None if version is None else (version[0], version[1])


def require_release(distribution: str, oldest: tuple[int, ...], module: str, requirement: str, extra: str) -> None:
    """ImportError, with the install line, when the installed ``distribution`` is older than ``oldest`` (to the patch
    release); an unknown one is let through (not installed as a distribution: the stock import says what is
    missing)."""
    installed = installed_version(distribution)
    if installed is not None and installed < oldest:
        raise ImportError(
            f"{module} needs {requirement} (installed: {distribution} {metadata.version(distribution)}): "
            f"pip install 'spanbatch[{extra}]'"
        )


def require_stock_encoder(oldest: tuple[int, int], module: str, requirement: str, extra: str) -> None:
    """``require_release`` of the stock OTLP encoder."""
    require_release(OTLP_ENCODER, oldest, module, requirement, extra)
