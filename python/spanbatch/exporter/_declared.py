"""The ``span_encoder`` / ``log_encoder`` attribute spanbatch's exporters declare their fast path with.

Declared in each exporter class's own body (``_capabilities`` takes a fast path only where it is
declared at or below the ``export`` it stands for), so it is one descriptor shared by all of them
rather than a property written out in each.
"""

from __future__ import annotations

from typing import Generic, TypeVar, overload

from spanbatch._core import LogEncoder, SpanEncoder

E = TypeVar("E", SpanEncoder, LogEncoder)

_DOC = """The Rust encoder, with its ``skipped_values`` / ``skipped_{items}`` counters.

spanbatch's processors read each batch with it while the batch fills, and export the
``{request}`` it made.
"""


class DeclaredEncoder(Generic[E]):
    """A read-only attribute: the exporter's encoder (its ``_encoder``), of type ``kind``."""

    def __init__(self, kind: type[E]) -> None:
        self._kind: type[E] = kind
        spans = kind is SpanEncoder
        self.__doc__ = _DOC.format(
            items="spans" if spans else "records", request="SpanRequest" if spans else "LogRequest"
        )

    @overload
    def __get__(self, exporter: None, owner: type) -> DeclaredEncoder[E]: ...
    @overload
    def __get__(self, exporter: object, owner: type) -> E: ...
    def __get__(self, exporter: object, owner: type) -> DeclaredEncoder[E] | E:
        if exporter is None:
            return self
        encoder: object = vars(exporter).get("_encoder")
        if encoder is None:  # an attribute lookup's own error, which ``getattr``/``hasattr`` expect
            raise AttributeError(f"{type(exporter).__name__!r} has no encoder: its __init__ did not make one")
        if not isinstance(encoder, self._kind):
            raise TypeError(f"expected a {self._kind.__name__}, not {type(encoder).__name__}")
        return encoder
