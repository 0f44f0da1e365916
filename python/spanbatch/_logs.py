"""The engine as an SDK ``LogRecordProcessor``: what ``BatchLogRecordProcessor`` is made of."""

from __future__ import annotations

import copy
from collections.abc import Callable

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource

from spanbatch._core import FanOut
from spanbatch._engine import Engine
from spanbatch._signals import LOGS


def readable(log_record: ReadWriteLogRecord) -> ReadableLogRecord:
    """The record as the stock processor queues it: a shallow copy of the API record with an empty context.

    The copy lets go of the (possibly large) context while the other processors keep theirs.
    """
    resource = log_record.resource if log_record.resource is not None else Resource.create({})
    api_record = copy.copy(log_record.log_record)
    api_record.context = Context()
    return ReadableLogRecord(
        log_record=api_record,
        resource=resource,
        instrumentation_scope=log_record.instrumentation_scope,
        limits=log_record.limits,
    )


class LogEngine(Engine[ReadableLogRecord], LogRecordProcessor):
    """Log records into every lane. A record emitted on a lane's own export thread (the exporter's
    logging, bridged back by a ``LoggingHandler``) is dropped there and counted (``export_thread``):
    it never recurses into the exporter and never waits for the queue it would feed."""

    signal = LOGS
    _push: Callable[[ReadableLogRecord], None]

    def _bind_hot_path(self) -> None:
        cores = [lane.core for lane in self._lanes]
        self._push = cores[0].on_emit if len(cores) == 1 else FanOut(cores).on_emit

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self._push(readable(log_record))
