"""Test back ends for spanbatch: an OTLP/HTTP and OTLP/gRPC trace receiver in a child process.

Needs the ``otlp`` extra (``opentelemetry-proto``, ``grpcio``); ``import spanbatch`` does not.
"""

from __future__ import annotations

from spanbatch.testing._store import ReceiverStats
from spanbatch.testing.receiver import OTLPReceiver, ReceiverError

__all__ = ["OTLPReceiver", "ReceiverError", "ReceiverStats"]
