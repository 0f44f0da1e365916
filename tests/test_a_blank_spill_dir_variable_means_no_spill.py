"""``SPANBATCH_SPILL_DIR`` set but blank (``" "``, a newline: what a deployment template renders for an empty
value) counts as unset, as every other blank ``SPANBATCH_*`` variable does: no spill, and no directory named
by the blanks in the working directory. Only OpenTelemetry's own text variables are taken as the SDK takes them."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("value", [" ", "\n", " \t "], ids=repr)
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_blank_spill_dir_variable_turns_no_spill_on(
    in_tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, protocol: str
) -> None:
    monkeypatch.setenv("SPANBATCH_SPILL_DIR", value)
    if protocol == "http":
        from spanbatch.exporter import OTLPSpanExporter  # noqa: PLC0415

        exporter = OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")
    else:
        from spanbatch.exporter.grpc import OTLPSpanExporter as GrpcSpanExporter  # noqa: PLC0415

        exporter = GrpcSpanExporter(endpoint="127.0.0.1:9", insecure=True)
    try:
        assert exporter.spill_counts() is None
    finally:
        exporter.shutdown()
    assert list(in_tmp_path.iterdir()) == []
