"""The engine's single declarations: the public classes spell out what ``_policies`` declares once, and
the layers below the processors do not reach up."""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Callable
from typing import Any, get_type_hints

import pytest
from spanbatch import BatchSpanProcessor, Pipeline
from spanbatch._policies import PolicyArguments

DECLARED = get_type_hints(PolicyArguments)

# What each public constructor takes besides the export policies.
OTHER_PARAMETERS: dict[Callable[..., Any], set[str]] = {
    BatchSpanProcessor.__init__: {
        "self",
        "span_exporter",
        "max_queue_size",
        "schedule_delay_millis",
        "max_export_batch_size",
        "export_timeout_millis",
        "meter_provider",
    },
    Pipeline.__init__: {
        "self",
        "exporters",
        "max_queue_size",
        "schedule_delay_millis",
        "max_export_batch_size",
        "export_timeout_millis",
        "meter_provider",
    },
}


@pytest.mark.parametrize("constructor", list(OTHER_PARAMETERS), ids=lambda f: f.__qualname__)
def test_public_constructors_spell_out_the_declared_policy_keywords(constructor: Callable[..., Any]) -> None:
    parameters = inspect.signature(constructor).parameters
    hints = get_type_hints(constructor)
    # A keyword added to a signature but not to PolicyArguments (or the reverse) shows here.
    assert set(parameters) - set(DECLARED) == OTHER_PARAMETERS[constructor]
    assert [name for name in parameters if name in DECLARED] == list(DECLARED)
    for name, declared in DECLARED.items():
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert parameters[name].default is None, name
        assert hints[name] == declared, name


@pytest.mark.timeout(60)
def test_the_processors_and_their_worker_import_no_exporter_package() -> None:
    code = (
        "import sys\n"
        "from spanbatch import BatchSpanProcessor, Pipeline\n"
        "import spanbatch._export\n"
        "print(sorted(m for m in sys.modules if m.startswith('spanbatch.exporter')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=50, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
