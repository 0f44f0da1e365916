"""Which opentelemetry releases are installed, for the few stock behaviours that changed between the
releases spanbatch supports: the one way spanbatch tells them apart, decided once per process."""

from __future__ import annotations

from importlib import metadata

OTLP_ENCODER = "opentelemetry-exporter-otlp-proto-common"


def installed_release(distribution: str) -> tuple[int, int] | None:
    """``(major, minor)`` of ``distribution``; None when it is not installed or its version is not numeric."""
    try:
        parts = metadata.version(distribution).split(".")[:2]
    except metadata.PackageNotFoundError:
        return None
    if len(parts) < 2 or not all(part.isdigit() for part in parts):
        return None
    return int(parts[0]), int(parts[1])


def require_stock_encoder(oldest: tuple[int, int], module: str, requirement: str, extra: str) -> None:
    """ImportError, with the install line, when the installed stock OTLP encoder is older than ``oldest``;
    an unknown one is let through (not installed as a distribution: the stock import says what is missing)."""
    installed = installed_release(OTLP_ENCODER)
    if installed is not None and installed < oldest:
        raise ImportError(
            f"{module} needs {requirement} (installed: {OTLP_ENCODER} {metadata.version(OTLP_ENCODER)}): "
            f"pip install 'spanbatch[{extra}]'"
        )
