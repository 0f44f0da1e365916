"""What spanbatch knows of an exporter: the ``Exporter`` protocol, and the fast paths its class
declares beyond ``export(spans)``, decided on the class.

An exporter's ``export`` is the contract. A fast path stands for the ``export`` (and
``export_many``) of the class that declares it, so it is taken only where that class's
methods are the ones that would run: a subclass that overrides ``export`` to filter or
redact gets ``export(list_of_spans)``, exactly as from the stock processor, unless it
declares the fast path again itself. Never decided by probing an instance: a ``Mock()``
or a wrapper that delegates with ``__getattr__`` has every attribute and declares nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import FunctionType
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeGuard, TypeVar

from opentelemetry.sdk.trace.export import SpanExportResult

if TYPE_CHECKING:
    from opentelemetry.sdk._logs.export import LogRecordExportResult

    from spanbatch._core import LogEncoder, SpanEncoder
    from spanbatch._encoding import Batch, LogBatch
    from spanbatch._spill import SpillCounts

Telemetry_contra = TypeVar("Telemetry_contra", contravariant=True)


class Exporter(Protocol[Telemetry_contra]):
    """Any exporter of one kind of telemetry, as the engine sees it (the SDK's ``SpanExporter`` is one)."""

    def export(self, batch: Sequence[Telemetry_contra], /) -> object: ...

    def shutdown(self) -> object: ...


class ExportsMany(Protocol):
    """Takes several batches per call: one result per batch, each what ``export`` would return for it."""

    def export(self, spans: Batch) -> SpanExportResult: ...

    def export_many(self, batches: Sequence[Batch]) -> Sequence[SpanExportResult]: ...


class ReportsBatchEnds(Protocol):
    """Its ``export_many`` sends the batches in turn, each within its own timeout, and tells the processor as each
    ends (spanbatch's OTLP/HTTP exporters, through ``_export_clock.paced_progress``): a flush or shutdown gives up a
    batch hung past ``export_timeout_millis`` then, not once the call has had the timeout once per batch."""

    reports_batch_ends: ClassVar[bool] = True

    def export_many(self, batches: Sequence[Batch]) -> Sequence[SpanExportResult]: ...


class EncodesSpans(Protocol):
    """Reads spans with its own encoder: its ``export`` (and ``export_many``) take the ``SpanRequest``
    the worker read a batch into while it filled, as well as lists of spans."""

    @property
    def span_encoder(self) -> SpanEncoder: ...

    def export(self, spans: Batch) -> SpanExportResult: ...


class EncodesLogs(Protocol):
    """Reads log records with its own encoder: its ``export`` (and ``export_many``) take the ``LogRequest``
    the worker read a batch into while it filled, as well as lists of log records."""

    @property
    def log_encoder(self) -> LogEncoder: ...

    def export(self, batch: LogBatch) -> LogRecordExportResult: ...


class Spills(Protocol):
    """Stores on disk what its backend did not take (spanbatch's OTLP exporters with a spill directory): notes
    the items of each batch it stored (``_encoding.note_spilled``), which the processor counts as ``spilled``,
    and tells what its disk did (``spill_counts``: None without a spill directory)."""

    def spill_counts(self) -> SpillCounts | None: ...

    def export(self, batch: Batch, /) -> object: ...


def exports_many(exporter: object) -> TypeGuard[ExportsMany]:
    """Whether the exporter's class declares ``export_many`` for the ``export`` it has."""
    return _declares(exporter, ExportsMany, "export_many")


def reports_batch_ends(exporter: object) -> bool:
    """Whether the exporter's class declares ``reports_batch_ends = True`` for the ``export_many`` it has: a subclass
    that overrides ``export_many`` tells nothing, whatever the method it overrides did."""
    owner = _owner(type(exporter), "reports_batch_ends")
    return (
        exports_many(exporter)
        and _declares(exporter, ReportsBatchEnds, "reports_batch_ends")
        and owner is not None
        and vars(owner)["reports_batch_ends"] is True
    )


def encodes_spans(exporter: object) -> TypeGuard[EncodesSpans]:
    """Whether the exporter's class declares ``span_encoder`` for every method the worker hands batches to."""
    return _encodes(exporter, EncodesSpans, "span_encoder")


def encodes_logs(exporter: object) -> TypeGuard[EncodesLogs]:
    """Whether the exporter's class declares ``log_encoder`` for every method the worker hands batches to."""
    return _encodes(exporter, EncodesLogs, "log_encoder")


def spills(exporter: object) -> TypeGuard[Spills]:
    """Whether the exporter's class declares ``spill_counts`` for the ``export`` it has."""
    return _declares(exporter, Spills, "spill_counts")


def _encodes(exporter: object, protocol: type, encoder: str) -> bool:
    """Whether ``encoder`` is declared with ``protocol``'s ``export``, and with ``export_many`` if there is one."""
    if not _declares(exporter, protocol, encoder):
        return False
    return not exports_many(exporter) or _declared_below(type(exporter), encoder, "export_many")


def _declares(exporter: object, protocol: type, fast_path: str) -> bool:
    """Whether the exporter's class defines every member of ``protocol``, ``fast_path`` at or below the others.

    A member counts only where a class in the MRO defines it, not where ``__getattr__`` would
    make one up. ``fast_path`` declared above an override of another member was written for
    the method that override replaced: the user's override wins. So does a method patched
    later, on the class or on the instance (``mock.patch.object``, a wrapping library): the
    other members must be the functions written in their class's body, and none may be set
    on the instance itself.
    """
    cls = type(exporter)
    members = [name for name in vars(protocol) if not name.startswith("_")]
    if any(name in _instance_dict(exporter) for name in members):
        return False
    return all(
        _declared_below(cls, fast_path, member) and (member == fast_path or _written_in_body(cls, member))
        for member in members
    )


def _instance_dict(exporter: object) -> dict[str, object]:
    """The attributes set on the instance itself; read past ``__getattr__``, which answers ``__dict__`` with
    whatever it makes up where the class has ``__slots__`` and no dict."""
    try:
        attributes = object.__getattribute__(exporter, "__dict__")
    except AttributeError:
        return {}
    return attributes if isinstance(attributes, dict) else {}


def _written_in_body(cls: type, name: str) -> bool:
    """Whether ``name`` on ``cls`` is the plain function its owner's class body defined, not one put there later."""
    owner = _owner(cls, name)
    if owner is None:
        return False
    method = vars(owner)[name]
    return isinstance(method, FunctionType) and method.__qualname__ == f"{owner.__qualname__}.{name}"


def _declared_below(cls: type, name: str, other: str) -> bool:
    """Whether ``cls`` defines ``name`` and ``other``, ``name`` in a class that inherits ``other``'s definition."""
    owner, other_owner = _owner(cls, name), _owner(cls, other)
    # Read from the MRO by identity, not asked of ``issubclass`` nor ``in``: they run the metaclass's
    # ``__subclasscheck__`` or ``__eq__``.
    return owner is not None and other_owner is not None and any(klass is other_owner for klass in owner.__mro__)


def _owner(cls: type, name: str) -> type | None:
    """The class in ``cls``'s MRO whose own namespace defines ``name``; None where the first one
    to name it sets it to None (a subclass switching the fast path off)."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return klass if vars(klass)[name] is not None else None
    return None
