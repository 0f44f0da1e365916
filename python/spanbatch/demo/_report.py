"""The side-by-side table (and its JSON form) of the demo's results."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

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


def describe(workload: Workload) -> str:
    return (
        f"{workload.sessions} agent sessions x {workload.turns} turns on {workload.threads} threads "
        f"(think time {workload.think_ms:g} ms per LLM call)"
    )


def title(results: Sequence[Result], workload: Workload, destination: str) -> str:
    """The workload on one line, each contender's exporter on the next."""
    exporters = "; ".join(f"{r.label}: {r.exporter}" for r in results)
    return f"{describe(workload)} -> {destination}\n{exporters}"


def _delivery(result: Result) -> str:
    if result.received is not None:
        return f"delivered {result.received:,}/{result.produced:,} spans"
    if result.dropped is not None:
        return f"dropped {result.dropped_total:,}/{result.produced:,} spans by its own count"
    return "counts none of its drops"


def verdict(results: Sequence[Result]) -> str | None:
    """spanbatch against the stock processor in one line, from the figures alone; None unless both ran."""
    by_label = {r.label: r for r in results}
    ours, stock = by_label.get("spanbatch"), by_label.get("stock")
    if ours is None or stock is None:
        return None
    unknown = " (the collector's count is not known here)" if None in (ours.received, stock.received) else ""
    ratio = ours.spans_per_second / stock.spans_per_second if stock.spans_per_second else None
    speed = f"{ours.spans_per_second:,.0f} spans/s" if ratio is None else f"{ratio:.1f}x the stock processor's spans/s"
    return (
        f"verdict: spanbatch {_delivery(ours)}, stock {_delivery(stock)}{unknown}; "
        f"spanbatch ran at {speed}, "
        f"with {ours.cpu_us_per_span:.1f} us of process CPU per span against {stock.cpu_us_per_span:.1f}"
    )


def table(results: Sequence[Result], workload: Workload, destination: str) -> str:
    """A plain-text table, one column per contender."""
    header = ["", *(r.label for r in results)]
    body = [[name, *(cell(r) for r in results)] for name, cell in ROWS]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = enumerate(zip(row, widths, strict=False))
        return "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in cells)

    rule = "  ".join("-" * w for w in widths)
    intro = f"{describe(workload)} -> {destination}; default processor settings"
    closing = verdict(results)
    return "\n".join([intro, "", line(header), rule, *(line(row) for row in body), *(["", closing] if closing else [])])


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
            "verdict": verdict(results),
        },
        indent=2,
    )
