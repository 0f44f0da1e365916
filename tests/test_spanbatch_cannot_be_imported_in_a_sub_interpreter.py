"""What the README says of sub-interpreters (mod_wsgi's default): the stock processor imports in one, spanbatch
does not, with PyO3's ImportError. When PyO3 supports them this fails, and the README's paragraph goes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# CPython's private module for sub-interpreters: 3.12 names it _xxsubinterpreters, 3.13 _interpreters.
_APP = textwrap.dedent(
    """
    try:
        import _interpreters as interpreters
    except ImportError:
        import _xxsubinterpreters as interpreters
    interpreter = interpreters.create()
    for module in ("opentelemetry.sdk.trace.export", "spanbatch"):
        try:  # 3.13 returns what the script raised, 3.12 raises it as RunFailedError
            failure = interpreters.run_string(interpreter, f"import {module}")
        except Exception as raised:
            failure = raised
        print(module, "imported" if failure is None else failure)
    """
)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="CPython exposes sub-interpreters to Python from 3.12")
def test_the_stock_processor_imports_in_a_sub_interpreter_and_spanbatch_says_why_it_cannot() -> None:
    app = subprocess.run([sys.executable, "-c", _APP], check=True, capture_output=True, text=True, timeout=60)
    lines = app.stdout.splitlines()
    assert lines[0] == "opentelemetry.sdk.trace.export imported", app.stderr
    assert lines[1].startswith("spanbatch "), app.stderr
    assert "does not support loading in subinterpreters" in lines[1], lines[1]
