"""Bootstrap: ``python3 dev.py test`` runs the whole suite, ``python3 dev.py demo`` the demo.

Needs only CPython and Rust: it makes a private virtualenv with nox and hands over to the noxfile.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TOOLS = ROOT / "target" / "dev-venv"
COMMANDS = {"test": [], "demo": ["-s", "demo"], "bench": ["-s", "bench"]}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python3 dev.py {{{'|'.join(COMMANDS)}}} [nox arguments]", file=sys.stderr)
        return 2
    python = TOOLS / "bin" / "python"
    if not python.exists():
        venv.create(TOOLS, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "nox>=2024.4"], check=True)
    command = [str(python), "-m", "nox", "--noxfile", str(ROOT / "noxfile.py"), *COMMANDS[argv[0]], *argv[1:]]
    return subprocess.run(command, check=False, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
