"""``max_export_batch_bytes``: the byte limit spanbatch's OTLP exporters cut their requests to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import cast

from spanbatch import _settings
from spanbatch._setting import Setting, checked_argument, read

# gRPC servers refuse messages over 4 MiB unless configured otherwise.
GRPC_DEFAULT_BYTES = _settings.MAX_EXPORT_BATCH_BYTES.default
_GRPC_SEND_LIMIT = "grpc.max_send_message_length"


def checked(argument: object) -> int | None:
    """The argument, a positive integer (None: not given); ``TypeError``/``ValueError`` otherwise."""
    return None if argument is None else checked_argument(_settings.MAX_EXPORT_BATCH_BYTES, argument)


def max_export_batch_bytes(argument: int | None, default: int | None) -> int | None:
    """The checked argument when given, else ``SPANBATCH_MAX_EXPORT_BATCH_BYTES``, else this exporter's ``default``.

    The exporter's own default stands in for the registry's, so that the warning for an unusable
    value names the limit really used.
    """
    if argument is not None:
        return argument
    setting = replace(cast("Setting[int | None]", _settings.MAX_EXPORT_BATCH_BYTES), default=default)
    return read(setting)


def grpc_send_limit(channel_options: Iterable[tuple[str, object]] | None) -> int | None:
    """The largest message a gRPC channel with these options sends (None: no limit of its own).

    gRPC refuses a larger one in the client (RESOURCE_EXHAUSTED) before it leaves the process. Only an
    integer counts, as in gRPC (it ignores a text value); -1 is its "no limit", and 0 refuses everything,
    which no cutting can help. Given twice, the smaller: grpcio takes the first, but need not always.
    """
    limits = [
        value
        for name, value in channel_options or ()
        if name == _GRPC_SEND_LIMIT and isinstance(value, int) and value > 0
    ]
    return min(limits, default=None)
