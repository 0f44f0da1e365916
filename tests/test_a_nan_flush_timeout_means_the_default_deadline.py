"""``force_flush(float("nan"))`` waits as ``force_flush()`` does: up to ``export_timeout_millis``.

The stock processor ignores the timeout; spanbatch keeps a deadline, and a NaN one compared false with every
clock reading: the wait, in slices of no time at all, spun a CPU until the export returned (1.2 s of CPU in a
2 s export), for ever behind an exporter that hangs."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import spanbatch

from tests.helpers import HangingExporter, end_spans, provider_with

pytestmark = pytest.mark.timeout(20)

EXPORT_TIMEOUT_MILLIS = 300


@pytest.mark.parametrize("kind", ["processor", "pipeline"])
def test_a_nan_flush_timeout_returns_false_at_the_export_timeout(
    kind: str, hanging_exporter: HangingExporter, shutdown_later: Callable[[Any], Any]
) -> None:
    if kind == "processor":
        processor: Any = spanbatch.BatchSpanProcessor(hanging_exporter, export_timeout_millis=EXPORT_TIMEOUT_MILLIS)
    else:
        processor = spanbatch.Pipeline({"hung": hanging_exporter}, export_timeout_millis=EXPORT_TIMEOUT_MILLIS)
    shutdown_later(processor)
    end_spans(provider_with(processor), 1)
    assert processor.force_flush(math.nan) is False
