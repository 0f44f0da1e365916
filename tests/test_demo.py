"""``python -m spanbatch demo``: a tiny run through the real receiver, its table, JSON and plot."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from spanbatch.__main__ import main as spanbatch_main
from spanbatch.demo._report import verdict
from spanbatch.demo._run import Result
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
def data() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(run_demo("--json").stdout)
    return parsed


@pytest.fixture(scope="module")
def results(data: dict[str, Any]) -> dict[str, Any]:
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
def test_verdict_is_computed_from_the_results(data: dict[str, Any], results: dict[str, Any]) -> None:
    ours, stock = results["spanbatch"], results["stock"]
    ratio = ours["spans_per_second"] / stock["spans_per_second"]
    assert data["verdict"] == (
        f"verdict: spanbatch delivered {ours['received']:,}/{ours['produced']:,} spans, "
        f"stock delivered {stock['received']:,}/{stock['produced']:,} spans; "
        f"spanbatch ran at {ratio:.1f}x the stock processor's spans/s, "
        f"with {ours['cpu_us_per_span']:.1f} us of process CPU per span against {stock['cpu_us_per_span']:.1f}"
    )


def _result(label: str, received: int | None, dropped: dict[str, int] | None, seconds: float, cpu: float) -> Result:
    return Result(label, f"{label} exporter", 100, received, dropped, seconds, cpu / 2, cpu, 0.01, True, 0.02)


def test_verdict_says_so_when_spanbatch_loses_or_is_slower() -> None:
    line = verdict([_result("stock", 100, None, 1.0, 20.0), _result("spanbatch", 60, {"queue_full": 40}, 2.0, 30.0)])
    assert line == (
        "verdict: spanbatch delivered 60/100 spans, stock delivered 100/100 spans; "
        "spanbatch ran at 0.5x the stock processor's spans/s, with 30.0 us of process CPU per span against 20.0"
    )


def test_verdict_with_an_external_collector_says_what_is_not_known() -> None:
    line = verdict([_result("stock", None, None, 1.0, 20.0), _result("spanbatch", None, {"queue_full": 3}, 0.5, 10.0)])
    assert line is not None
    assert line.startswith(
        "verdict: spanbatch dropped 3/100 spans by its own count, stock counts none of its drops "
        "(the collector's count is not known here); spanbatch ran at 2.0x"
    )


def test_verdict_needs_both_contenders() -> None:
    assert verdict([_result("spanbatch", 100, {}, 1.0, 10.0)]) is None


@pytest.mark.timeout(150)
def test_table_ends_with_the_verdict() -> None:
    lines = run_demo().stdout.strip().splitlines()
    assert lines[-1].startswith("verdict: spanbatch delivered ")
    assert "stock delivered " in lines[-1]


def _png_text(png: bytes) -> dict[str, str]:
    """The PNG's tEXt chunks (keyword -> text)."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    chunks: dict[str, str] = {}
    offset = 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind, body = png[offset + 4 : offset + 8], png[offset + 8 : offset + 8 + length]
        if kind == b"tEXt":
            keyword, _, text = body.partition(b"\0")
            chunks[keyword.decode("latin-1")] = text.decode("latin-1")
        offset += 12 + length
    return chunks


@pytest.mark.timeout(150)
def test_plot_is_titled_with_the_workload_and_each_exporter(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib (extra: demo)")
    target = tmp_path / "demo.png"
    data = json.loads(run_demo("--plot", str(target), "--json").stdout)
    title = _png_text(target.read_bytes())["Title"]
    assert "6 agent sessions x 2 turns on 3 threads (think time 0 ms per LLM call)" in title
    for result in data["results"]:
        assert f"{result['label']}: {result['exporter']}" in title


@pytest.mark.timeout(90)
def test_plot_without_matplotlib_fails_at_once_with_one_line() -> None:
    # matplotlib hidden the way Python documents (a None entry in sys.modules makes the import fail), and a
    # workload that would run for hours: the demo must refuse before it starts.
    hide = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from spanbatch.__main__ import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            hide,
            "demo",
            "--sessions",
            "1000",
            "--threads",
            "1",
            "--think-ms",
            "1000",
            "--plot",
            "x.png",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == ["--plot needs matplotlib: pip install 'spanbatch[demo]'"]


def test_plot_into_a_missing_directory_fails_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib", reason="with matplotlib absent the demo stops at that first")
    target = tmp_path / "missing" / "demo.png"
    with pytest.raises(SystemExit, match=r"^--plot: no directory .*missing"):
        spanbatch_main(["demo", "--sessions", "1000", "--think-ms", "1000", "--plot", str(target)])
    assert capsys.readouterr().err == ""


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
