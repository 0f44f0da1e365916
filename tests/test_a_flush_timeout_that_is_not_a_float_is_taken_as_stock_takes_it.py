"""A ``force_flush`` timeout that is not a float (a ``Decimal``, a string read from a setting) flushes as stock's does.

The stock processor ignores its flush timeout, so ``force_flush(Decimal("5000"))`` and ``force_flush("5000")``
export the queued spans and return True, and ``TracerProvider.force_flush(Decimal(...))`` passes a ``Decimal`` on
to every processor. spanbatch keeps a deadline, and did arithmetic with it as given: both raised a ``TypeError``
about its own internals (``unsupported operand type(s) for +: 'float' and 'decimal.Decimal'``) into the
application. A number is taken as its float; anything else means the default deadline, with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import spanbatch

from tests.helpers import PROCESSORS, RecordingExporter, end_spans, provider_with

pytestmark = pytest.mark.timeout(20)

TIMEOUTS = {"Decimal": Decimal("5000"), "str": "5000"}


@pytest.mark.parametrize("timeout", sorted(TIMEOUTS))
@pytest.mark.parametrize("kind", ["stock", "spanbatch", "pipeline"])
def test_a_flush_given_a_timeout_that_is_not_a_float_exports_what_is_queued(
    kind: str, timeout: str, shutdown_later: Callable[[Any], Any]
) -> None:
    exporter = RecordingExporter()
    processor = shutdown_later(
        spanbatch.Pipeline({"only": exporter}) if kind == "pipeline" else PROCESSORS[kind](exporter)
    )
    end_spans(provider_with(processor), 3)
    assert processor.force_flush(TIMEOUTS[timeout]) is True
    assert len(exporter.spans) == 3


@pytest.mark.parametrize("kind", ["stock", "spanbatch"])
def test_a_tracer_providers_flush_given_a_decimal_timeout_exports_what_is_queued(
    kind: str, shutdown_later: Callable[[Any], Any]
) -> None:
    exporter = RecordingExporter()
    provider = provider_with(shutdown_later(PROCESSORS[kind](exporter)))
    end_spans(provider, 3)
    assert provider.force_flush(Decimal("5000")) is True  # type: ignore[arg-type]
    assert len(exporter.spans) == 3


def test_a_flush_timeout_that_is_not_a_number_is_warned_of(
    shutdown_later: Callable[[Any], Any], caplog: pytest.LogCaptureFixture
) -> None:
    # The default deadline: 30 s, or export_timeout_millis if longer.
    processor = shutdown_later(spanbatch.BatchSpanProcessor(RecordingExporter(), export_timeout_millis=40_000))
    with caplog.at_level(logging.WARNING, logger="spanbatch"):
        assert processor.force_flush(b"soon") is True  # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records if r.name == "spanbatch"] == [
        "A flush or shutdown timeout_millis=b'soon' is not a number: waiting up to the default 40000 ms."
    ]
