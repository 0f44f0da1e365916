"""How spanbatch's own log lines put times and counts into words."""

from __future__ import annotations


def in_the_last(seconds: float) -> str:
    """The words "in the last 12 s"; under one second "in the last second": a first drop is told at once, and
    "in the last 0 s" would say nothing."""
    return "in the last second" if seconds < 1 else f"in the last {seconds:.0f} s"


def spans_in_words(count: int) -> str:
    """The words "1 span", "3 spans", for the spill's lines (its files hold spans only)."""
    return f"{count} span" if count == 1 else f"{count} spans"
