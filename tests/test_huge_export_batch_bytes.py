"""A ``max_export_batch_bytes`` past what the native encoder can hold (a 64-bit size) is refused, never a crash.

``SPANBATCH_MAX_EXPORT_BATCH_BYTES=99999999999999999999`` used to raise ``OverflowError`` from the gRPC
exporter's constructor, taking the application down for a bad variable.
"""

from __future__ import annotations

import logging
import sys

import pytest
from spanbatch import _setting
from spanbatch.exporter import OTLPSpanExporter as HttpExporter

grpc = pytest.importorskip("spanbatch.exporter.grpc")

HUGE = 2**64


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPANBATCH_MAX_EXPORT_BATCH_BYTES", raising=False)
    _setting._warned.clear()


@pytest.mark.timeout(20)
def test_a_huge_variable_warns_and_the_grpc_exporter_keeps_its_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SPANBATCH_MAX_EXPORT_BATCH_BYTES", str(HUGE))
    with caplog.at_level(logging.WARNING, logger="spanbatch"):
        exporter = grpc.OTLPSpanExporter(endpoint="127.0.0.1:9", insecure=True)
    try:
        assert exporter.max_export_batch_bytes == 4 * 1024 * 1024
    finally:
        exporter.shutdown()
    assert "SPANBATCH_MAX_EXPORT_BATCH_BYTES" in caplog.text


@pytest.mark.timeout(20)
@pytest.mark.parametrize("value", [sys.maxsize + 1, HUGE, 10**30])
def test_a_huge_argument_raises_value_error_for_both_exporters(value: int) -> None:
    with pytest.raises(ValueError, match="max_export_batch_bytes"):
        grpc.OTLPSpanExporter(endpoint="127.0.0.1:9", insecure=True, max_export_batch_bytes=value)
    with pytest.raises(ValueError, match="max_export_batch_bytes"):
        HttpExporter(endpoint="http://127.0.0.1:9/v1/traces", max_export_batch_bytes=value)
