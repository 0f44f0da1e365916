"""``max_export_batch_bytes``: the byte limit spanbatch's OTLP exporters cut their requests to."""

from __future__ import annotations

import operator

from spanbatch import _settings

# gRPC servers refuse messages over 4 MiB unless configured otherwise.
GRPC_DEFAULT_BYTES = _settings.MAX_EXPORT_BATCH_BYTES.default


def max_export_batch_bytes(argument: object, default: int) -> int:
    """The argument when given (a positive integer), else ``SPANBATCH_MAX_EXPORT_BATCH_BYTES``, else ``default``."""
    if argument is None:
        value, source = _settings.read_with_source(_settings.MAX_EXPORT_BATCH_BYTES)
        return value if source is not None else default
    if isinstance(argument, bool):  # an int to operator.index, never meant as a size
        raise TypeError("max_export_batch_bytes must be an integer, not 'bool'.")
    try:
        value = operator.index(argument)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"max_export_batch_bytes must be an integer, not {type(argument).__name__!r}.") from None
    if value <= 0:
        raise ValueError("max_export_batch_bytes must be a positive integer.")
    return value
