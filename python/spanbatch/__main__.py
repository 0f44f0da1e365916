"""``python -m spanbatch <command>``: the package's command-line tools."""

from __future__ import annotations

import sys
from collections.abc import Sequence

_USAGE = "usage: python -m spanbatch demo [--help | options]"


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(_USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "demo":
        from spanbatch.demo import main as demo  # noqa: PLC0415 -- each command loads only what it needs

        return demo(rest)
    print(f"unknown command {command!r}\n{_USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
