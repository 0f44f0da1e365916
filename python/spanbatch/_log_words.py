"""How spanbatch's own log lines put a time into words."""

from __future__ import annotations


def in_the_last(seconds: float) -> str:
    """The words "in the last 12 s"; under ten seconds to the tenth ("in the last 0.3 s"): a first drop is told at
    once, and "in the last 0 s" would say nothing."""
    return f"in the last {seconds:.1f} s" if seconds < 10 else f"in the last {seconds:.0f} s"
