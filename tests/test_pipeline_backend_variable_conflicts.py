"""A Pipeline backend's variable that conflicts with a pipeline-wide argument warns, never raises.

``Pipeline(..., max_export_batch_size=200)`` with ``SPANBATCH_A_MAX_QUEUE_SIZE=100`` (a small queue for one
backend) used to raise ``ValueError`` for the whole pipeline: a variable took the application down. As
when both values come from variables, the backend's batch size is cut to its queue size, with a warning
naming the variable. Two conflicting arguments still raise, as the stock processor's do.
"""

from __future__ import annotations

import logging

import pytest
import spanbatch
from spanbatch import _setting

from tests.helpers import RecordingExporter

VARIABLES = ("SPANBATCH_A_MAX_QUEUE_SIZE", "SPANBATCH_A_MAX_EXPORT_BATCH_SIZE", "SPANBATCH_MAX_QUEUE_SIZE")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    _setting._warned.clear()


def lane_settings(**kwargs: object) -> dict[str, spanbatch.BatchSettings]:
    pipeline = spanbatch.Pipeline({"a": RecordingExporter(), "b": RecordingExporter()}, **kwargs)  # type: ignore[arg-type]
    try:
        return {lane.name: lane.settings for lane in pipeline._lanes}
    finally:
        pipeline.shutdown()


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("variable", "value", "kwargs"),
    [
        ("SPANBATCH_A_MAX_QUEUE_SIZE", "100", {"max_export_batch_size": 200}),
        ("SPANBATCH_A_MAX_EXPORT_BATCH_SIZE", "4096", {"max_queue_size": 1000}),
    ],
)
def test_a_backend_variable_against_an_argument_cuts_that_backends_batch_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variable: str,
    value: str,
    kwargs: dict[str, int],
) -> None:
    monkeypatch.setenv(variable, value)
    with caplog.at_level(logging.WARNING, logger="spanbatch"):
        settings = lane_settings(**kwargs)
    assert settings["a"].max_export_batch_size == settings["a"].max_queue_size == min(int(value), *kwargs.values())
    assert settings["b"].max_export_batch_size == kwargs.get("max_export_batch_size", 512)
    assert variable in caplog.text


@pytest.mark.timeout(20)
def test_two_conflicting_arguments_still_raise() -> None:
    with pytest.raises(ValueError, match="less than or equal to max_queue_size"):
        lane_settings(max_queue_size=100, max_export_batch_size=200)
