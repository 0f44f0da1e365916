"""The engine's single declarations: each export policy is declared once in ``_settings`` (setting, keyword,
resolved field), the public classes show what it declares, and the layers below the processors do not reach up."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
from collections.abc import Callable
from typing import Any, get_type_hints

import pytest
from spanbatch import BatchLogRecordProcessor, BatchSpanProcessor, Pipeline, _settings
from spanbatch._settings import ExportPolicies, PolicyArguments, SpanPolicyArguments

DECLARED = get_type_hints(SpanPolicyArguments)  # a span processor's: every signal's, then spans' own

# What each public constructor takes besides the export policies.
OTHER_PARAMETERS: dict[Callable[..., Any], list[str]] = {
    BatchSpanProcessor.__init__: [
        "self",
        "span_exporter",
        "max_queue_size",
        "schedule_delay_millis",
        "max_export_batch_size",
        "export_timeout_millis",
        "meter_provider",
    ],
    Pipeline.__init__: [
        "self",
        "exporters",
        "log_exporters",
        "max_queue_size",
        "schedule_delay_millis",
        "max_export_batch_size",
        "export_timeout_millis",
        "meter_provider",
    ],
    BatchLogRecordProcessor.__init__: [
        "self",
        "exporter",
        "schedule_delay_millis",
        "max_export_batch_size",
        "export_timeout_millis",
        "max_queue_size",
        "meter_provider",
    ],
}
# Their policy keywords: a log processor has no span-start export.
KEYWORDS: dict[Callable[..., Any], type] = {
    BatchSpanProcessor.__init__: SpanPolicyArguments,
    Pipeline.__init__: SpanPolicyArguments,
    BatchLogRecordProcessor.__init__: PolicyArguments,
}


def test_each_policy_is_one_setting_one_keyword_and_one_field_in_the_same_order() -> None:
    fields = {field.name: field for field in dataclasses.fields(ExportPolicies)}
    assert [setting.argument for setting in _settings.POLICIES] == list(DECLARED) == list(fields)
    resolved = get_type_hints(ExportPolicies)
    for setting in _settings.POLICIES:
        name = str(setting.argument)
        assert fields[name].default == setting.default, name
        assert DECLARED[name] == resolved[name] | None, name  # the keyword is the resolved type, or None: not given


@pytest.mark.parametrize("constructor", list(OTHER_PARAMETERS), ids=lambda f: f.__qualname__)
def test_public_constructors_show_the_declared_policy_keywords(constructor: Callable[..., Any]) -> None:
    parameters = inspect.signature(constructor).parameters
    keywords = KEYWORDS[constructor].__annotations__
    assert list(parameters) == OTHER_PARAMETERS[constructor] + list(keywords)
    assert list(keywords) == list(DECLARED)[: len(keywords)]  # every signal's policies come first
    for name in keywords:
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert parameters[name].default is None, name
        assert parameters[name].annotation == keywords[name].__forward_arg__, name


@pytest.mark.parametrize(
    ("constructor", "keyword"),
    [(BatchSpanProcessor, "linger"), (Pipeline, "linger"), (BatchLogRecordProcessor, "export_span_start")],
    ids=lambda c: getattr(c, "__name__", c),
)
def test_a_keyword_that_is_no_policy_is_refused_as_python_refuses_it(
    constructor: Callable[..., Any], keyword: str
) -> None:
    refusal = rf"^{constructor.__name__}.__init__\(\) got an unexpected keyword argument '{keyword}'$"
    with pytest.raises(TypeError, match=refusal):
        constructor({"a": None} if constructor is Pipeline else None, **{keyword: True})


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
