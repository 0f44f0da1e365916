"""The repr of a dataclass with only some of its fields: those that apply to what it describes."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def repr_of(instance: DataclassInstance, names: Collection[str]) -> str:
    """``Type(name=value, ...)`` for the fields ``names`` holds, in the dataclass's order."""
    shown = (f"{f.name}={getattr(instance, f.name)!r}" for f in fields(instance) if f.name in names)
    return f"{type(instance).__name__}({', '.join(shown)})"
