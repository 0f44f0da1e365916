"""A count that must be positive says so for a negative value too, never "zero or positive" (zero is refused)."""

from __future__ import annotations

import logging

import pytest
import spanbatch
from spanbatch import _setting

from tests.helpers import RecordingExporter


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPANBATCH_MAX_CONCURRENT_EXPORTS", raising=False)
    _setting._warned.clear()


@pytest.mark.parametrize("value", [-1, 0])
def test_a_non_positive_max_concurrent_exports_argument_is_refused_as_not_positive(value: int) -> None:
    with pytest.raises(ValueError, match=r"^max_concurrent_exports must be positive\.$"):
        spanbatch.BatchSpanProcessor(RecordingExporter(), max_concurrent_exports=value)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("value", ["-1", "0"])
def test_a_non_positive_max_concurrent_exports_variable_is_reported_as_not_positive(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    monkeypatch.setenv("SPANBATCH_MAX_CONCURRENT_EXPORTS", value)
    with caplog.at_level(logging.WARNING, logger="spanbatch"):
        spanbatch.BatchSpanProcessor(RecordingExporter()).shutdown()
    [message] = [r.getMessage() for r in caplog.records if "SPANBATCH_MAX_CONCURRENT_EXPORTS" in r.getMessage()]
    assert "must be positive" in message
    assert "zero" not in message


def test_max_retries_still_takes_zero_and_refuses_a_negative_as_not_zero_or_positive() -> None:
    spanbatch.BatchSpanProcessor(RecordingExporter(), max_retries=0).shutdown()
    with pytest.raises(ValueError, match="must be zero or positive"):
        spanbatch.BatchSpanProcessor(RecordingExporter(), max_retries=-1)
