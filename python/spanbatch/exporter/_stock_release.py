"""Which release of the stock OTLP encoder is installed: spanbatch's exporters refuse one whose bytes
theirs would not match, at import, with the install line that fixes it."""

from __future__ import annotations

from importlib import metadata

ENCODER_DISTRIBUTION = "opentelemetry-exporter-otlp-proto-common"


def _release(version: str) -> tuple[int, int] | None:
    parts = version.split(".")[:2]
    if len(parts) < 2 or not all(part.isdigit() for part in parts):
        return None
    return int(parts[0]), int(parts[1])


def require_stock_encoder(oldest: tuple[int, int], module: str, requirement: str, extra: str) -> None:
    """ImportError when the installed stock encoder is older than ``oldest``; an unknown one is let through."""
    try:
        installed = _release(metadata.version(ENCODER_DISTRIBUTION))
    except metadata.PackageNotFoundError:
        return  # not installed as a distribution: the stock exporter's own import says what is missing
    if installed is not None and installed < oldest:
        raise ImportError(
            f"{module} needs {requirement} (installed: {ENCODER_DISTRIBUTION} "
            f"{metadata.version(ENCODER_DISTRIBUTION)}): pip install 'spanbatch[{extra}]'"
        )
