"""``--plot``: the comparison as a row of bar charts in one PNG (needs matplotlib, extra ``demo``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from spanbatch.demo._run import Result

_COLOURS = {"stock": "#9e9e9e", "spanbatch": "#e4572e"}


def _delivered_percent(result: Result) -> float:
    arrived = result.received if result.received is not None else result.produced - result.dropped_total
    return 100 * arrived / result.produced if result.produced else 0.0


_PANELS: list[tuple[str, str, Callable[[Result], float]]] = [
    ("spans delivered", "%", _delivered_percent),
    ("workload throughput", "spans/s", lambda r: r.spans_per_second),
    ("app-thread CPU", "µs per span", lambda r: r.app_cpu_us_per_span),
    ("process CPU", "µs per span", lambda r: r.cpu_us_per_span),
    ("flush + exit", "ms", lambda r: (r.flush_seconds + r.exit_seconds) * 1000),
]


def require_matplotlib(path: str) -> None:
    """Refuses ``--plot`` before any workload runs, in one line, when it could not be drawn or written."""
    try:
        import matplotlib  # noqa: F401, PLC0415 -- optional: only --plot needs it
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'spanbatch[demo]'") from None
    folder = Path(path).parent
    if not folder.is_dir():
        raise SystemExit(f"--plot: no directory {str(folder)!r} to write {path!r} into")


def plot(results: Sequence[Result], title: str, path: str) -> None:
    import matplotlib  # noqa: PLC0415 -- optional: only --plot needs it

    matplotlib.use("Agg")  # no display needed, whatever the user's default back end
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, len(_PANELS), figsize=(2.9 * len(_PANELS), 3.6), layout="constrained")
    labels = [r.label for r in results]
    colours = [_COLOURS.get(label, "#4c72b0") for label in labels]
    for ax, (name, unit, value) in zip(axes, _PANELS, strict=True):
        values = [value(r) for r in results]
        bars = ax.bar(labels, values, color=colours)
        ax.bar_label(bars, labels=[f"{v:,.0f}" if v >= 1000 else f"{v:,.1f}" for v in values], padding=2, fontsize=9)
        ax.set_title(name, fontsize=10)
        ax.set_ylabel(unit)
        ax.margins(y=0.18)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=120, metadata={"Title": title})
    plt.close(fig)
