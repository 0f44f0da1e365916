"""A spilling exporter's own directory under ``spill_dir`` (named after its backend: endpoint and headers) is removed
at its shutdown when it holds nothing: an application that makes an exporter per credential (a rotating token, one
per tenant) left two empty directories per exporter for good (revT: 2,000 exporters, 4,001 inodes). One that holds
requests stays for the next process to replay, and so does one another live exporter of this process uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult
from spanbatch.exporter import OTLPSpanExporter

from tests.helpers import make_span

pytestmark = pytest.mark.timeout(60)

ENDPOINT = "http://127.0.0.1:9/v1/traces"  # nothing listens there: nothing is sent in these tests


def exporter_for(spill_dir: Path, token: str) -> OTLPSpanExporter:
    return OTLPSpanExporter(
        endpoint=ENDPOINT, headers={"authorization": f"Bearer {token}"}, spill_dir=spill_dir, timeout=1
    )


def test_empty_directories_of_exporters_shut_down_are_removed(tmp_path: Path) -> None:
    for token in range(5):
        exporter = exporter_for(tmp_path, str(token))
        assert len(list(tmp_path.iterdir())) == 1
        exporter.shutdown()
        assert list(tmp_path.iterdir()) == []
    assert tmp_path.is_dir()  # the user's own directory stays


def test_a_directory_holding_requests_stays(tmp_path: Path) -> None:
    exporter = exporter_for(tmp_path, "a")
    (backend,) = tmp_path.iterdir()
    assert exporter.export([make_span()]) is SpanExportResult.SUCCESS  # refused: spilled
    exporter.shutdown()
    assert len(list(backend.glob("*.spill"))) == 1


def test_a_directory_another_live_exporter_uses_stays(tmp_path: Path) -> None:
    first, second = exporter_for(tmp_path, "a"), exporter_for(tmp_path, "a")
    first.shutdown()
    (backend,) = tmp_path.iterdir()
    second.shutdown()
    assert not backend.exists()
