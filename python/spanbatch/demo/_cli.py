"""Arguments, the run of each contender, and the output."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence

from spanbatch.demo._contenders import CONTENDERS
from spanbatch.demo._plot import plot, require_matplotlib
from spanbatch.demo._report import as_json, table, title
from spanbatch.demo._run import Result, receiver_counter, run_contender
from spanbatch.demo._workload import Workload


def parser() -> argparse.ArgumentParser:
    defaults = Workload()
    p = argparse.ArgumentParser(
        prog="python -m spanbatch demo",
        description="Trace the same synthetic AI-agent workload with the stock BatchSpanProcessor and with "
        "spanbatch, and compare what each cost and delivered.",
    )
    p.add_argument("--sessions", type=int, default=defaults.sessions, help="agent sessions (default %(default)s)")
    p.add_argument("--threads", type=int, default=defaults.threads, help="concurrent sessions (default %(default)s)")
    p.add_argument("--turns", type=int, default=defaults.turns, help="turns per session (default %(default)s)")
    p.add_argument(
        "--think-ms", type=float, default=defaults.think_ms, help="simulated latency per LLM call (default %(default)s)"
    )
    p.add_argument(
        "--endpoint", help="OTLP/HTTP traces URL of a real collector (default: an embedded receiver on 127.0.0.1)"
    )
    p.add_argument("--only", choices=sorted(CONTENDERS), action="append", help="run only this contender")
    p.add_argument("--plot", metavar="FILE.png", help="draw the comparison (needs matplotlib: spanbatch[demo])")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    return p


@contextlib.contextmanager
def _destination(endpoint: str | None) -> Iterator[tuple[str, Callable[[str, int], int] | None]]:
    """The endpoint to export to and, for the embedded receiver, how to count what it received."""
    if endpoint:
        yield endpoint, None
        return
    from spanbatch.testing import OTLPReceiver  # noqa: PLC0415 -- needs the otlp extra, and only here

    with OTLPReceiver("http") as receiver:
        yield receiver.endpoint, receiver_counter(receiver.stats)


def _check(args: argparse.Namespace) -> None:
    for name in ("sessions", "threads", "turns"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be at least 1")
    if args.think_ms < 0:
        raise SystemExit("--think-ms must not be negative")
    if args.plot:
        require_matplotlib(args.plot)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    _check(args)
    workload = Workload(sessions=args.sessions, threads=args.threads, turns=args.turns, think_ms=args.think_ms)
    names = [name for name in CONTENDERS if not args.only or name in args.only]
    results: list[Result] = []
    with _destination(args.endpoint) as (endpoint, received_of):
        where = args.endpoint or "embedded OTLP/HTTP receiver (separate process)"
        for name in names:
            results.append(run_contender(name, CONTENDERS[name](endpoint), workload, received_of))
    if args.json:
        print(as_json(results, workload, where))
    else:
        print(table(results, workload, where))
    if args.plot:
        plot(results, title(results, workload, where), args.plot)
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0
