"""``from spanbatch.exporter import OTLPSpanExporter`` (or ``OTLPLogExporter``) with a stock OTLP/HTTP exporter older
than 1.45.2 raises ImportError with the line to install, as the README says (revY). 1.45.0 and 1.45.1 have the stock
hooks spanbatch uses, so they imported, but default to a transport the Rust one does not take over (it stepped aside
silently) and need no ``requests`` (without it: a bare ``No module named 'requests'``); an SDK before 1.39 lacks the
log exporter's parts, and the log exporter's import failed on them without the install line. The installed
distribution's version is what each case below stands in for."""

from __future__ import annotations

from importlib import metadata

import pytest
import spanbatch.exporter
from spanbatch import _releases

HTTP = "opentelemetry-exporter-otlp-proto-http"
INSTALL = r"opentelemetry-exporter-otlp-proto-http>=1\.45\.2.*pip install 'spanbatch\[otlp-http\]'"


def installed_as(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    real = metadata.version
    monkeypatch.setattr(_releases.metadata, "version", lambda name: version if name == HTTP else real(name))


@pytest.mark.parametrize("version", ["1.27.0", "1.38.0", "1.45.0", "1.45.1", "1.45"])
@pytest.mark.parametrize("name", ["OTLPSpanExporter", "OTLPLogExporter"])
def test_older_releases_are_refused_with_the_install_line(
    monkeypatch: pytest.MonkeyPatch, version: str, name: str
) -> None:
    installed_as(monkeypatch, version)
    with pytest.raises(ImportError, match=INSTALL):
        getattr(spanbatch.exporter, name)


@pytest.mark.parametrize("version", ["1.45.2", "1.46.0", "1.46.0rc1", "2.0.0"])
def test_the_supported_releases_are_taken(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    installed_as(monkeypatch, version)
    assert spanbatch.exporter.OTLPSpanExporter.__name__ == "OTLPSpanExporter"
    assert spanbatch.exporter.OTLPLogExporter.__name__ == "OTLPLogExporter"


def test_versions_are_read_to_the_patch_release(monkeypatch: pytest.MonkeyPatch) -> None:
    for version, numbers in [("1.45.2", (1, 45, 2)), ("1.46.0rc1", (1, 46, 0)), ("1.45", (1, 45)), ("dev", None)]:
        installed_as(monkeypatch, version)
        assert _releases.installed_version(HTTP) == numbers
