"""On SDKs before 1.34 the stock span processor warns of a full queue once in its life
(``Queue is full, likely spans will be dropped.``, guarded by its ``_spans_dropped`` flag); spanbatch, which
logs that stock line there, must not repeat it at every drop report of a lane that keeps overflowing.

Runs under such an SDK (the floor session: 1.27); skipped under SDKs that share the 1.34+ ``BatchProcessor``.
"""

from __future__ import annotations

import functools
import logging

import pytest
from spanbatch import _drops
from spanbatch._drops import DropReporter
from spanbatch.processor import SPANS

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(_drops._SHARED_PROCESSOR, reason="needs an SDK before 1.34 (its own span processor)"),
]

_OLD_LINE = "Queue is full, likely spans will be dropped."


def test_the_old_stock_full_queue_line_is_logged_once_however_often_the_lane_overflows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reporter = DropReporter("", SPANS, interval_seconds=0)  # each report is a new interval's
    with caplog.at_level(logging.WARNING, logger="opentelemetry.sdk.trace.export"):
        for dropped in (8, 16, 24):  # three intervals of a queue that stays full
            reporter.report(functools.partial(dict, queue_full=dropped))
    lines = [r for r in caplog.records if r.name == "opentelemetry.sdk.trace.export" and r.getMessage() == _OLD_LINE]
    assert len(lines) == 1
    # Another processor warns once of its own, as each stock processor does.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="opentelemetry.sdk.trace.export"):
        DropReporter("", SPANS, interval_seconds=0).report(functools.partial(dict, queue_full=1))
    assert [r.getMessage() for r in caplog.records if r.name == "opentelemetry.sdk.trace.export"] == [_OLD_LINE]
