"""How many examples a property test draws."""

from __future__ import annotations

import os

# CI draws every example on the newest CPython and this share of them on the others, where the same abi3 encoder
# meets the same stock one again (the property tests took 70 s of each session's CPU).
SHARE_VARIABLE = "SPANBATCH_TESTS_EXAMPLES_SHARE"


def examples(full: int) -> int:
    """``full``, or its share where ``SPANBATCH_TESTS_EXAMPLES_SHARE`` (0 to 1) says; never fewer than 10."""
    return max(10, round(full * float(os.environ.get(SHARE_VARIABLE, "1"))))
