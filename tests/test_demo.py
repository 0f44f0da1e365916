"""``python -m spanbatch demo``: a tiny run through the real receiver, its table, JSON and plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from spanbatch.__main__ import main as spanbatch_main
from spanbatch.testing import OTLPReceiver

pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="the demo needs the otlp extra")

TINY = ["--sessions", "6", "--threads", "3", "--turns", "2", "--think-ms", "0"]


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spanbatch", "demo", *TINY, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(run_demo("--json").stdout)
    return {r["label"]: r for r in data["results"]}


@pytest.mark.timeout(150)
def test_both_contenders_run(results: dict[str, Any]) -> None:
    assert set(results) == {"stock", "spanbatch"}
    assert results["stock"]["produced"] == results["spanbatch"]["produced"] > 0
    # The stock processor counts no drops; its losses show only as spans never received.
    assert results["stock"]["dropped"] is None
    assert results["stock"]["received"] + results["stock"]["unaccounted"] == results["stock"]["produced"]


@pytest.mark.timeout(150)
def test_spanbatch_delivers_everything_it_produced(results: dict[str, Any]) -> None:
    spanbatch = results["spanbatch"]
    assert spanbatch["dropped"] == {}
    assert spanbatch["received"] == spanbatch["produced"]
    assert spanbatch["unaccounted"] == 0
    assert spanbatch["flushed"]


@pytest.mark.timeout(150)
def test_table_has_a_column_per_contender_and_progress_goes_to_stderr() -> None:
    done = run_demo()
    header = next(line for line in done.stdout.splitlines() if "stock" in line and "spanbatch" in line)
    assert header.split() == ["stock", "spanbatch"]
    for row in ("spans produced", "spans received", "dropped (counted)", "spans/s", "exit (shutdown)"):
        assert row in done.stdout
    assert "6/6 sessions" in done.stderr
    assert "#" not in done.stdout


@pytest.mark.timeout(150)
def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib (extra: demo)")
    target = tmp_path / "demo.png"
    run_demo("--only", "spanbatch", "--plot", str(target))
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.timeout(60)
def test_endpoint_sends_both_runs_to_the_external_collector() -> None:
    with OTLPReceiver("http") as collector:
        data = json.loads(run_demo("--endpoint", collector.endpoint, "--json").stdout)
        results = {r["label"]: r for r in data["results"]}
        # The demo cannot see an external collector, so it reports what its processors counted instead.
        expected = {
            f"agent-demo-{label}": r["produced"] - sum((r["dropped"] or {}).values()) for label, r in results.items()
        }
        # Exporters wait for the receiver's answer, so the counts should already be final; the wait only absorbs slack.
        collector.wait_for(lambda s: s.services == expected, timeout=5)
        stats = collector.stats()
    assert set(results) == {"stock", "spanbatch"}
    assert results["stock"]["produced"] == results["spanbatch"]["produced"] > 0
    # Had the embedded receiver been used, this collector would have seen nothing and `received` would be set.
    assert data["destination"] == collector.endpoint
    for r in results.values():
        assert r["received"] is None
        assert r["unaccounted"] is None
        assert r["flushed"]
    assert results["stock"]["dropped"] is None
    assert results["spanbatch"]["dropped"] == {}
    # Exactly produced - dropped for each run: nothing lost, nothing sent twice, nothing refused.
    assert stats.services == expected
    assert stats.duplicates == 0
    assert stats.rejected == stats.malformed == 0


@pytest.mark.timeout(60)
def test_endpoint_table_names_the_collector_and_shows_received_as_unknown() -> None:
    with OTLPReceiver("http") as collector:
        done = run_demo("--endpoint", collector.endpoint)
        assert collector.wait_for(lambda s: s.unique_spans > 0, timeout=5)
    assert f"-> {collector.endpoint};" in done.stdout
    rows = {line.split("  ")[0]: line.split() for line in done.stdout.splitlines()}
    assert rows["spans received"][-2:] == ["n/a", "n/a"]
    assert rows["lost without a count"][-2:] == ["n/a", "n/a"]


def test_unknown_command_and_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert spanbatch_main(["nope"]) == 2
    assert "unknown command" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--threads must be at least 1"):
        spanbatch_main(["demo", "--threads", "0"])
