"""Print a pytest-benchmark JSON file as a compact table with ratios against the stock processor."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from typing import Any


def rows(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for bench in data["benchmarks"]:
        groups[bench["group"] or bench["name"]].append(bench)
    return groups


def main(path: str) -> None:
    with open(path) as f:
        data = json.load(f)
    header = ("scenario", "processor", "median", "per span", "vs stock", "exported", "dropped")
    print("\n{:<44} {:<12} {:>12} {:>10} {:>9} {:>9} {:>8}".format(*header))
    for group, benches in sorted(rows(data).items()):
        stock = next((b for b in benches if "stock" in b["name"]), None)
        for bench in sorted(benches, key=lambda b: b["name"]):
            info = bench["extra_info"]
            median = bench["stats"]["median"]
            per_span = median / info.get("spans_per_call", 1) * 1e9
            ratio = f"{stock['stats']['median'] / median:.1f}x" if stock else "-"
            who = bench["params"].get("name", bench["name"]) if bench.get("params") else bench["name"]
            print(
                f"{group:<44} {who:<12} {median * 1e3:>10.3f}ms {per_span:>8.0f}ns {ratio:>9} "
                f"{info.get('exported', '-'):>9} {info.get('dropped', '-'):>8}"
            )


if __name__ == "__main__":
    main(sys.argv[1])
