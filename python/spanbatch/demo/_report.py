"""The side-by-side table (and its JSON form) of the demo's results."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Callable

from spanbatch.demo._run import Result
from spanbatch.demo._workload import Workload


def _dropped(result: Result) -> str:
    if result.dropped is None:
        return "not counted"
    if not result.dropped:
        return "0"
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(result.dropped.items()))
    return f"{result.dropped_total} ({reasons})"


def _optional(value: int | None) -> str:
    return "n/a" if value is None else str(value)


def _flush(result: Result) -> str:
    return f"{result.flush_seconds * 1000:.0f} ms" + ("" if result.flushed else " (timed out)")


ROWS: list[tuple[str, Callable[[Result], str]]] = [
    ("exporter", lambda r: r.exporter),
    ("spans produced", lambda r: str(r.produced)),
    ("spans received", lambda r: _optional(r.received)),
    ("dropped (counted)", _dropped),
    ("lost without a count", lambda r: _optional(r.unaccounted)),
    ("spans/s (workload)", lambda r: f"{r.spans_per_second:,.0f}"),
    ("app-thread CPU us/span", lambda r: f"{r.app_cpu_us_per_span:.1f}"),
    ("process CPU us/span", lambda r: f"{r.cpu_us_per_span:.1f}"),
    ("flush at session end", _flush),
    ("exit (shutdown)", lambda r: f"{r.exit_seconds * 1000:.0f} ms"),
]


def table(results: Sequence[Result], workload: Workload, destination: str) -> str:
    """A plain-text table, one column per contender."""
    header = ["", *(r.label for r in results)]
    body = [[name, *(cell(r) for r in results)] for name, cell in ROWS]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))

    rule = "  ".join("-" * w for w in widths)
    intro = (
        f"{workload.sessions} agent sessions x {workload.turns} turns on {workload.threads} threads "
        f"(think time {workload.think_ms:g} ms per LLM call) -> {destination}; default processor settings"
    )
    return "\n".join([intro, "", line(header), rule, *(line(row) for row in body)])


def as_json(results: Sequence[Result], workload: Workload, destination: str) -> str:
    return json.dumps(
        {
            "workload": {
                "sessions": workload.sessions,
                "threads": workload.threads,
                "turns": workload.turns,
                "think_ms": workload.think_ms,
            },
            "destination": destination,
            "results": [r.as_dict() for r in results],
        },
        indent=2,
    )
