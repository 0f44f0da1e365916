"""What a log processor queues for an emitted record, as the installed SDK's stock processor queues it.

On SDK 1.44+ that is a ``ReadableLogRecord`` around a shallow copy (``copy.copy``) of the API record
with an empty context (it lets go of a possibly large context; the other processors keep theirs);
SDKs 1.39-1.43 wrap the API record itself, context and all; older SDKs queue the ``LogData`` they emit
as it is. The native ``LogEmit`` does the same in one call
into Rust for record classes that copy plainly: ``copy.copy`` of one is ``object.__new__(cls)`` with
its ``__dict__`` copied in, and setting ``context`` stores it in that ``__dict__``. That is decided
once per class, from the class alone; every other record takes :func:`readable`, stock's own steps.
"""

from __future__ import annotations

import copy
import copyreg
import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.sdk import _logs as sdk_logs
from opentelemetry.sdk.resources import Resource

from spanbatch._core import BatchCore, FanOut, LogEmit, RoomWait
from spanbatch._releases import installed_release

if TYPE_CHECKING:  # no ReadableLogRecord before SDK 1.39
    from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord

_READABLE: Any = getattr(sdk_logs, "ReadableLogRecord", None)
_READABLE_FIELDS = ["log_record", "resource", "instrumentation_scope", "limits"]
# Whether the stock processor queues a copy of the API record (SDK 1.44+; an SDK of unknown version: yes).
_SDK = installed_release("opentelemetry-sdk")
_STOCK_COPIES = _SDK is None or _SDK >= (1, 44)

# Class attributes that copy.copy, object.__new__ or a `.context =` go through: each must be object's own.
_OBJECT_HOOKS = ("__new__", "__reduce_ex__", "__reduce__", "__getstate__", "__getattribute__", "__setattr__")
# Hooks object has none of (``__getstate__``/``__setstate__`` pairs, pickling arguments, copy methods).
_OWN_HOOKS = ("__copy__", "__deepcopy__", "__setstate__", "__getnewargs_ex__", "__getnewargs__")


def readable(log_record: ReadWriteLogRecord) -> ReadableLogRecord:
    """The stock processor's steps: a shallow copy of the API record, its context emptied (SDK 1.44+), made
    readable."""
    if _READABLE is None:
        return log_record  # type: ignore[return-value]  # a LogData, on the SDKs that have no ReadableLogRecord
    resource = log_record.resource if log_record.resource is not None else Resource.create({})
    api_record = log_record.log_record
    if _STOCK_COPIES:
        api_record = copy.copy(api_record)
        api_record.context = Context()
    return _READABLE(  # type: ignore[no-any-return]
        log_record=api_record,
        resource=resource,
        instrumentation_scope=log_record.instrumentation_scope,
        limits=log_record.limits,
    )


def _has_slots(cls: type) -> bool:
    return any(vars(klass).get("__slots__") for klass in cls.__mro__)


def copies_plainly(cls: type) -> bool:
    """Whether ``copy.copy(record)`` for a ``cls`` is ``object.__new__(cls)`` with ``record.__dict__``
    copied in, and ``copy.context = value`` stores ``value`` in the copy's ``__dict__``."""
    if issubclass(cls, type) or cls in getattr(copy, "_copy_dispatch", {}) or cls in copyreg.dispatch_table:
        return False
    if any(getattr(cls, name, None) is not getattr(object, name, None) for name in _OBJECT_HOOKS):
        return False
    if any(hasattr(cls, name) for name in _OWN_HOOKS) or getattr(cls, "__abstractmethods__", None):
        return False
    # No slot to copy besides the __dict__, and no class attribute (a property) to set ``context`` through.
    return not _has_slots(cls) and not any("context" in vars(klass) for klass in cls.__mro__)


def _builds_plainly(readable_class: Any) -> bool:
    """Whether ``readable_class(**fields)`` is ``object.__new__`` with ``fields`` stored in its ``__dict__``:
    a dataclass of exactly the fields stock passes, with the generated ``__init__`` and no ``__post_init__``."""
    if not dataclasses.is_dataclass(readable_class) or not isinstance(readable_class, type):
        return False
    fields = dataclasses.fields(readable_class)
    return (
        [field.name for field in fields] == _READABLE_FIELDS
        and all(field.init for field in fields)
        and readable_class.__dataclass_params__.init  # type: ignore[attr-defined]
        and not hasattr(readable_class, "__post_init__")
        and readable_class.__new__ is object.__new__
        and not _has_slots(readable_class)
    )


def _copies_never(cls: type) -> bool:
    return False


def emitter(cores: Sequence[BatchCore]) -> Callable[..., None]:
    """``on_emit(record, wait=True)`` into every lane of ``cores``: the record made readable, then pushed."""
    if _READABLE is None and len(cores) == 1:  # the record is queued as it is
        return cores[0].on_emit
    return _emit(cores).on_emit


def emitter_handing_back(cores: Sequence[BatchCore]) -> Callable[[Any, bool], list[RoomWait]]:
    """``emitter``'s push for a caller that waits for room itself: it returns the lanes' waits (see ``_room``)."""
    return _emit(cores).on_emit_handing_back


def _emit(cores: Sequence[BatchCore]) -> FanOut | LogEmit:
    if _READABLE is None:  # the record is queued as it is
        return FanOut(list(cores))
    # The native path copies; where stock does not (SDK 1.39-1.43), every record takes stock's own steps.
    plain = copies_plainly if _STOCK_COPIES and _builds_plainly(_READABLE) else _copies_never
    return LogEmit(list(cores), _READABLE, Context, plain, readable)
