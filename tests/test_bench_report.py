"""``tests.benchmarks.report``: groups, ratios against stock and drop counts from a benchmark JSON file."""

from __future__ import annotations

from typing import Any

from tests.benchmarks.report import markdown, spread, table


def bench(name: str, group: str, median: float, **info: Any) -> dict[str, Any]:
    return {
        "name": f"test[{name}]",
        "group": group,
        "params": {"name": name},
        "stats": {"median": median},
        "extra_info": info,
    }


def test_rows_are_ordered_stock_first_with_ratios_and_drops() -> None:
    data = {
        "benchmarks": [
            bench("fastotel", "g", 0.004, spans_per_call=1000, produced=1000, exported=1000, dropped=0),
            bench("spanbatch", "g", 0.001, spans_per_call=1000, produced=1000, exported=995, dropped=5),
            bench("stock", "g", 0.002, spans_per_call=1000, produced=1000, exported=700, dropped=300),
        ]
    }
    lines = table(data)
    rows = [line.split() for line in lines if line.startswith("  ") and "processor" not in line]
    assert [row[0] for row in rows] == ["stock", "spanbatch", "fastotel"]
    assert rows[1][5] == "2.0x"  # twice as fast as stock
    assert rows[2][5] == "0.5x"
    assert "300 (30%)" in lines[2]
    assert "5 (0.5%)" in lines[3]


def test_a_round_that_is_not_spans_has_no_rate_and_exporters_are_named() -> None:
    data = {"benchmarks": [bench("stock", "exit", 12.5, produced=10, exported=0, dropped=10, exporter="http")]}
    lines = table(data)
    assert lines[2].split()[3:6] == ["-", "1.0x", "-"]
    assert lines[-1] == "  exporters -- stock: http"


def test_markdown_has_one_row_per_contender_and_names_the_group_once() -> None:
    data = {
        "benchmarks": [
            bench("spanbatch", "g", 0.001, spans_per_call=1000, produced=1000, exported=1000, dropped=0),
            bench("stock", "g", 0.002, spans_per_call=1000, produced=1000, exported=1000, dropped=0),
        ]
    }
    lines = markdown(data)
    assert lines[0].startswith("| scenario | processor | median |")
    assert lines[2].startswith("| g | stock | 2 ms | 2 us | 1.0x |")
    assert lines[3].startswith("|  | spanbatch | 1 ms | 1 us | 2.0x |")


def test_the_spread_of_several_runs_shows_each_figures_range_and_the_most_dropped() -> None:
    runs = [
        {"benchmarks": [bench("spanbatch", "g", median, spans_per_call=1000, dropped=lost, cpu_us_per_span=cpu)]}
        for median, lost, cpu in [(0.002, 0, 20.0), (0.001, 3, 18.5), (0.004, 1, 19.0)]
    ]
    (row,) = [line for line in spread(runs) if "spanbatch" in line]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells == ["g", "spanbatch", "1 us to 4 us", "250,000 to 1,000,000", "18.5 us to 20.0 us", "3"]
