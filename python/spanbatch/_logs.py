"""The engine as an SDK ``LogRecordProcessor``: what ``BatchLogRecordProcessor`` is made of."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.sdk import _logs as sdk_logs
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk.resources import Resource

from spanbatch._core import FanOut
from spanbatch._engine import Engine
from spanbatch._signals import LOGS

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord

# SDK 1.39+ hands processors a ReadWriteLogRecord, which its stock processor queues as a ReadableLogRecord;
# older ones hand them a LogData, which theirs queues as it is.
_READABLE: Any = getattr(sdk_logs, "ReadableLogRecord", None)


def readable(log_record: ReadWriteLogRecord) -> ReadableLogRecord:
    """The record as the installed SDK's stock processor queues it: on SDK 1.39+, a shallow copy of the API
    record with an empty context (it lets go of a possibly large context; the other processors keep theirs)."""
    if _READABLE is None:
        return log_record  # type: ignore[return-value]  # a LogData, on the SDKs that have no ReadableLogRecord
    resource = log_record.resource if log_record.resource is not None else Resource.create({})
    api_record = copy.copy(log_record.log_record)
    api_record.context = Context()
    return _READABLE(  # type: ignore[no-any-return]
        log_record=api_record,
        resource=resource,
        instrumentation_scope=log_record.instrumentation_scope,
        limits=log_record.limits,
    )


class LogEngine(Engine["ReadableLogRecord"], LogRecordProcessor):
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

    if not hasattr(LogRecordProcessor, "on_emit"):
        emit = on_emit  # what SDKs before 1.28 call
