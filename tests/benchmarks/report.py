"""Print a pytest-benchmark JSON file as a compact table: per group, ratios against the stock processor.

``python -m tests.benchmarks.report target/bench.json [--markdown]``; ``--markdown`` prints the same
figures as a Markdown table. ``--spread run1.json run2.json run3.json`` prints, per row, the lowest and
highest of those runs' medians per span, spans/s and CPU per span, with the most it dropped in a run:
what repeated runs show, for the README.

``vs stock`` is the stock median over this row's median: above 1x is faster than stock. ``spans/s``
is spans per round over the median round (``-`` where a round is not a number of spans). ``exported``
and ``dropped`` are what the benchmark recorded, so a fast but lossy row reads as such. ``vs baseline``
is, where a benchmark records it, the row against the baseline timed in the same rounds: CPU per span
over the loop with no processor, or the time of a C builtin called in the same loop.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from typing import Any

# A baseline first, then stock, then the others in a fixed order, so every group reads the same way.
_BASELINES = {"none": -1, "none+encoding": -1, "id() floor": -1}
_ORDER = {**_BASELINES, "stock": 0, "spanbatch": 1, "spanbatch+stock-exporter": 2, "fastotel": 3}


def rows(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for bench in data["benchmarks"]:
        groups[bench["group"] or bench["name"]].append(bench)
    return groups


def contender(bench: dict[str, Any]) -> str:
    """The ``name`` parameter, else the test name's last word (``test_encode_stock`` -> ``stock``)."""
    params = bench.get("params") or {}
    if "name" in params:
        return str(params["name"])
    return str(bench["name"]).rsplit("_", 1)[-1]


def duration(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.0f} ns"


def dropped(info: dict[str, Any]) -> str:
    count, produced = info.get("dropped"), info.get("produced")
    if count is None:
        return "-"
    if not count or not produced:
        return str(count)
    percent = 100 * count / produced
    share = f" ({percent:.0f}%)" if percent >= 1 else f" ({percent:.1f}%)"
    return f"{count}{share}"


HEADER = ("processor", "median", "per span", "vs stock", "spans/s", "exported", "dropped", "CPU/span", "vs baseline")


def against_baseline(info: dict[str, Any]) -> str:
    """The row against the baseline it was timed with in the same rounds (see ``test_bench_overhead``)."""
    if "overhead_us_per_span" in info:
        return f"{info['overhead_us_per_span']:+.2f} us"
    if "floor_ratio" in info:
        return f"{info['floor_ratio']:.1f}x floor"
    return "-"


def groups(data: dict[str, Any]) -> list[tuple[str, list[list[str]], list[str]]]:
    """Per group (sorted): one row of cells per contender, stock first, and the exporters named."""
    result = []
    for group, benches in sorted(rows(data).items()):
        stock = next((b for b in benches if contender(b) == "stock"), None)
        cells = []
        for bench in sorted(benches, key=lambda b: (_ORDER.get(contender(b), 9), b["name"])):
            info = bench["extra_info"]
            median = bench["stats"]["median"]
            spans = info.get("spans_per_call")
            cpu = info.get("cpu_us_per_span")
            cells.append(
                [
                    contender(bench),
                    duration(median),
                    "-" if spans is None else duration(median / spans),
                    f"{stock['stats']['median'] / median:.1f}x" if stock else "-",
                    "-" if spans is None else f"{spans / median:,.0f}",
                    str(info.get("exported", "-")),
                    dropped(info),
                    "-" if cpu is None else f"{cpu:.1f} us",
                    against_baseline(info),
                ]
            )
        exporters = [f"{contender(b)}: {b['extra_info']['exporter']}" for b in benches if "exporter" in b["extra_info"]]
        result.append((group, cells, sorted(exporters)))
    return result


def table(data: dict[str, Any]) -> list[str]:
    width = max([10, *(len(contender(b)) for b in data["benchmarks"])])
    template = "  {:<{w}} {:>10} {:>10} {:>9} {:>12} {:>9} {:>13} {:>9} {:>12}"
    lines = []
    for group, cells, exporters in groups(data):
        lines.append(f"\n{group}")
        lines.extend(template.format(*row, w=width) for row in [list(HEADER), *cells])
        if exporters:
            lines.append("  exporters -- " + "; ".join(exporters))
    return lines


def markdown(data: dict[str, Any]) -> list[str]:
    """The same figures as a Markdown table, one row per contender, for the README."""
    lines = ["| scenario | " + " | ".join(HEADER) + " |", "|---|---|" + "---:|" * (len(HEADER) - 1)]
    for group, cells, _ in groups(data):
        lines.extend(f"| {group if i == 0 else ''} | " + " | ".join(row) + " |" for i, row in enumerate(cells))
    return lines


def _span_figures(bench: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    """Seconds per span, spans per second and CPU microseconds per span of one run's row (None: not spans)."""
    median, info = bench["stats"]["median"], bench["extra_info"]
    spans = info.get("spans_per_call")
    if spans is None:
        return median, None, info.get("cpu_us_per_span")
    return median / spans, spans / median, info.get("cpu_us_per_span")


def _between(values: list[float | None], show: Any) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "-"
    low, high = show(min(known)), show(max(known))
    return low if low == high else f"{low} to {high}"


def spread(runs: list[dict[str, Any]]) -> list[str]:
    """A Markdown table: per group and contender, the range over ``runs`` of each figure."""
    header = ("processor", "per span", "spans/s", "CPU/span", "most dropped")
    lines = ["| scenario | " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 1)]
    by_row: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for data in runs:
        for group, benches in rows(data).items():
            for bench in benches:
                by_row[group, contender(bench)].append(bench)
    previous = None
    for (group, name), benches in sorted(by_row.items(), key=lambda item: (item[0][0], _ORDER.get(item[0][1], 9))):
        per_span, rate, cpu = zip(*(_span_figures(b) for b in benches), strict=True)
        most_dropped = max((int(b["extra_info"].get("dropped") or 0) for b in benches), default=0)
        cells = [
            name,
            _between(list(per_span), duration),
            _between(list(rate), lambda r: f"{r:,.0f}"),
            _between(list(cpu), lambda c: f"{c:.1f} us"),
            f"{most_dropped:,}",
        ]
        lines.append(f"| {group if group != previous else ''} | " + " | ".join(cells) + " |")
        previous = group
    return lines


USAGE = """usage: python -m tests.benchmarks.report BENCH.json [--markdown]
       python -m tests.benchmarks.report --spread RUN1.json RUN2.json ...

Prints pytest-benchmark's JSON (target/bench.json after `python3 dev.py bench`) as a table per group, or as
a Markdown table; --spread gives each cell's lowest to highest over several runs."""


def main(argv: list[str]) -> None:
    if not argv or argv[0] in {"-h", "--help"} or (argv[0] == "--spread" and len(argv) < 2):
        print(USAGE)
        return
    if argv[0] == "--spread":
        runs = []
        for path in argv[1:]:
            with open(path) as f:
                runs.append(json.load(f))
        print(f"{len(runs)} runs; each cell: lowest to highest of the runs' medians")
        print("\n".join(spread(runs)))
        return
    with open(argv[0]) as f:
        data = json.load(f)
    if "--markdown" in argv[1:]:
        print("\n".join(markdown(data)))
        return
    machine = data.get("machine_info", {})
    cpu = machine.get("cpu", {})
    print(
        f"{machine.get('python_implementation', '')} {machine.get('python_version', '')}, "
        f"{cpu.get('brand_raw', machine.get('processor', ''))}, {cpu.get('count', '?')} CPUs"
    )
    print("\n".join(table(data)))


if __name__ == "__main__":
    main(sys.argv[1:])
