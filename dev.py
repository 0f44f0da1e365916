"""Bootstrap: ``python3 dev.py test`` runs the whole suite, ``python3 dev.py demo`` the demo.

Needs only CPython and Rust: it makes a private virtualenv with nox and uv (nox makes the sessions' virtualenvs
with it) and hands over to the noxfile, so neither need be on PATH. ``python3 dev.py list`` lists the sessions;
nox options and, after ``--``, the session's own arguments follow the command:
``python3 dev.py test -s tests-3.11 -- -k fork``.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / "target" / "dev-venv"
TOOLS_REQUIREMENT = "nox[uv]>=2025.10"
STAMP = TOOLS / "installed.txt"  # the requirement last installed there
COMMANDS = {
    "test": [],  # the noxfile's default sessions: rust, lint, types, tests on every CPython present
    "demo": ["-s", "demo"],
    "bench": ["-s", "bench"],
    "soak": ["-s", "soak"],
    "build": ["-s", "build"],
    "list": ["-l"],
}
ALIASES = {"-l": "list"}


def nox_arguments(argv: list[str]) -> list[str] | None:
    """What nox is given for ``dev.py`` arguments; None for an unknown command."""
    command = ALIASES.get(argv[0], argv[0]) if argv else None
    if command not in COMMANDS:
        return None
    return [*COMMANDS[command], *argv[1:]]


def main(argv: list[str]) -> int:
    arguments = nox_arguments(argv)
    if arguments is None:
        print(f"usage: python3 dev.py {{{'|'.join(COMMANDS)}}} [nox arguments] [-- session arguments]", file=sys.stderr)
        return 2
    python = TOOLS / "bin" / "python"
    if not STAMP.exists():  # new, made by an older dev.py (nox without uv), or left half made: made afresh
        venv.create(TOOLS, with_pip=True, clear=True)
    if not STAMP.exists() or STAMP.read_text(encoding="utf-8") != TOOLS_REQUIREMENT:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", TOOLS_REQUIREMENT], check=True)
        STAMP.write_text(TOOLS_REQUIREMENT, encoding="utf-8")
    command = [str(python), "-m", "nox", "--noxfile", str(ROOT / "noxfile.py"), *arguments]
    return subprocess.run(command, check=False, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
