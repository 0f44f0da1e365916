"""The settings registry (``spanbatch._settings``) is the one place variables are read, and README.md agrees with it.

README's configuration tables (a ``variable…`` and a ``default`` column) are parsed: each row's variables, in the
order they win (the variable column, then any named in the default column before "then"), must be one setting of
the registry with the same default, and every setting of spanbatch's own must have its row. OpenTelemetry's own
variables that spanbatch only reads must at least be named in README.
"""

from __future__ import annotations

import logging
import re
import typing
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.sdk import environment_variables as sdk_variables
from spanbatch import _settings
from spanbatch._policies import resolve_policies
from spanbatch._setting import LONGEST_MILLIS, Setting, read
from spanbatch._settings import SETTINGS, DropPolicyName, ExportPolicies

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PACKAGE = ROOT / "python" / "spanbatch"

# A variable as README writes it in backticks (``OTEL_…_ENABLED=true`` names OTEL_…_ENABLED).
_VARIABLE = re.compile(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]*(?:<NAME>[A-Z0-9_]+)?)(?:=[^`]*)?`")
_FIRST_CODE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Row:
    section: str
    argument: str | None  # None where the table has no argument column, or the row names none
    variables: tuple[str, ...]
    default: str

    def __str__(self) -> str:
        return f"{self.section}: {', '.join(self.variables)} (default {self.default!r})"


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def readme_rows() -> list[Row]:
    """Every row of README's configuration tables that names a variable."""
    rows: list[Row] = []
    section = ""
    lines = README.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        is_header = line.startswith("|") and not lines[number - 1].startswith("|")
        if not is_header:
            continue
        header = [cell.lower() for cell in _cells(line)]
        variable = next((i for i, cell in enumerate(header) if cell.startswith("variable")), None)
        if variable is None or "default" not in header:
            continue
        default = header.index("default")
        argument = header.index("argument") if "argument" in header else None
        for body in lines[number + 2 :]:
            if not body.startswith("|"):
                break
            cells = _cells(body)
            # The default column may name the variables read after the row's own: "`SPANBATCH_X`, then 2048".
            named_default, _, value = cells[default].rpartition("then ")
            chain = tuple(_VARIABLE.findall(cells[variable]) + _VARIABLE.findall(named_default))
            if not chain:
                continue
            code = _FIRST_CODE.search(cells[argument]) if argument is not None else None
            rows.append(Row(section, code[1] if code else None, chain, value.strip()))
    return rows


def documented_name(variable: str) -> str:
    return variable.replace("{NAME}", "<NAME>")


def same_default(default: object, documented: str) -> bool:
    text = documented.strip("`").strip('"')
    if text == "off":
        return default is None or default is False
    if isinstance(default, bool):
        return text == str(default).lower()
    if isinstance(default, (int, float)):
        return re.fullmatch(r"\d+", text) is not None and float(text) == default
    return text == default


def by_variables() -> dict[tuple[str, ...], Setting[object]]:
    return {tuple(documented_name(v) for v in setting.variables): setting for setting in SETTINGS}


def test_the_readme_has_configuration_tables() -> None:
    sections = {row.section for row in readme_rows()}
    assert {"Configuration", "Export policies", "Several backends"} <= sections


@pytest.mark.parametrize("row", readme_rows(), ids=str)
def test_every_variable_in_the_readme_is_a_setting_with_its_default(row: Row) -> None:
    setting = by_variables().get(row.variables)
    assert setting is not None, (
        f"no setting reads {row.variables} in this order; the registry has {list(by_variables())}"
    )
    assert same_default(setting.default, row.default), f"the registry's default is {setting.default!r}"
    if setting.argument is not None and row.argument is not None:
        assert row.argument == setting.argument


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda setting: setting.variables[0])
def test_every_setting_is_documented(setting: Setting[object]) -> None:
    variables = tuple(documented_name(v) for v in setting.variables)
    rows = [row for row in readme_rows() if row.variables == variables]
    if any(v.startswith("SPANBATCH_") for v in variables):
        assert len(rows) == 1, f"{variables} needs one row in README's configuration tables"
    else:  # OpenTelemetry's own, documented by OpenTelemetry: README says what spanbatch does with it
        for variable in variables:
            assert f"`{variable}" in README


_DEFAULT_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "count": (int,),
    "millis": (float, type(None)),
    "flag": (bool,),
    "otel_flag": (bool,),
    "choice": (str,),
    "text": (type(None),),
}


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda setting: setting.variables[0])
def test_each_default_is_a_value_of_its_kind(setting: Setting[object]) -> None:
    assert type(setting.default) in _DEFAULT_TYPES[setting.kind]
    if setting.kind == "choice":
        assert setting.default in setting.choices


def test_the_drop_policy_type_names_the_registry_choices() -> None:
    assert typing.get_args(DropPolicyName) == _settings.DROP_POLICY.choices


def test_the_policies_defaults_are_the_registry_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for setting in SETTINGS:
        for variable in setting.variables:
            monkeypatch.delenv(variable, raising=False)
    assert resolve_policies({}) == ExportPolicies()


def test_the_credential_provider_variables_are_the_sdk_ones() -> None:
    assert _settings.HTTP_CREDENTIAL_PROVIDER.variables == (
        sdk_variables._OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER,
        sdk_variables._OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER,
    )
    assert _settings.HTTP_LOGS_CREDENTIAL_PROVIDER.variables == (
        sdk_variables._OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER,
        sdk_variables._OTEL_PYTHON_EXPORTER_OTLP_HTTP_LOGS_CREDENTIAL_PROVIDER,
    )


def test_no_other_module_reads_the_environment() -> None:
    readers = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "_setting.py" and re.search(r"\b(environ|getenv)\b", path.read_text(encoding="utf-8"))
    ]
    assert readers == []


def test_every_spanbatch_variable_the_readme_names_is_read() -> None:
    read = {documented_name(variable) for setting in SETTINGS for variable in setting.variables}
    named = set(re.findall(r"\bSPANBATCH_[A-Z0-9_]*(?:<NAME>[A-Z0-9_]+)?\b(?!\*)", README))
    assert named - read == set()


@dataclass(frozen=True)
class Read:
    setting: Setting[object]
    environment: dict[str, str]
    value: object
    warning: str | None = None  # on ``logger``: where such warnings have always gone (the SDK's, for its switches)
    backend: str | None = None
    logger: str = "spanbatch._config"


# One case per kind, with the outcome and the warning each had before the registry read them all.
READS = [
    Read(_settings.MAX_QUEUE_SIZE, {"SPANBATCH_MAX_QUEUE_SIZE": "abc", "OTEL_BSP_MAX_QUEUE_SIZE": "64"}, 64,
         "Ignoring SPANBATCH_MAX_QUEUE_SIZE='abc': not an integer; using OTEL_BSP_MAX_QUEUE_SIZE instead."),
    Read(_settings.BACKEND_BATCH[1], {"SPANBATCH_MY_BACKEND_SCHEDULE_DELAY_MS": "0"}, 1000,
         "Ignoring SPANBATCH_MY_BACKEND_SCHEDULE_DELAY_MS='0': must be positive; using the default 1000 instead.",
         backend="my-backend"),
    Read(_settings.MAX_RETRIES, {"SPANBATCH_MAX_RETRIES": " -1 "}, 0,
         "Ignoring SPANBATCH_MAX_RETRIES='-1': must be zero or positive; using 0 instead."),
    Read(_settings.MAX_CONCURRENT_EXPORTS, {"SPANBATCH_MAX_CONCURRENT_EXPORTS": "-0"}, 1,
         "Ignoring SPANBATCH_MAX_CONCURRENT_EXPORTS='0': must be positive; using 1 instead."),
    Read(_settings.LINGER, {"SPANBATCH_LINGER_MS": "nan"}, None,
         "Ignoring SPANBATCH_LINGER_MS='nan': must be positive; using None instead."),
    Read(_settings.EXIT_TIMEOUT, {"SPANBATCH_EXIT_TIMEOUT_MS": "inf"}, LONGEST_MILLIS),
    Read(_settings.DEBUG, {"SPANBATCH_DEBUG": " MAYBE "}, False,
         "Ignoring SPANBATCH_DEBUG='maybe': not a boolean; using False instead."),
    Read(_settings.DROP_POLICY, {"SPANBATCH_DROP_POLICY": " Random "}, "oldest",
         "Ignoring SPANBATCH_DROP_POLICY='Random': not one of oldest, newest, block, drop; "
         "using the default oldest instead."),
    Read(_settings.DROP_POLICY, {"SPANBATCH_DROP_POLICY": " NEWEST "}, "newest"),
    Read(_settings.INTERNAL_METRICS, {"OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "yes"}, False,
         "Invalid value for OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED: 'yes'. Expected 'true' or 'false'.",
         logger="opentelemetry.sdk.environment_variables._internal"),
    Read(_settings.INTERNAL_METRICS, {"OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": " TRUE "}, True),
    Read(_settings.CONFIG_FILE, {"OTEL_CONFIG_FILE": "  "}, "  "),
]  # fmt: skip


@pytest.mark.parametrize("case", READS, ids=lambda case: next(iter(case.environment)))
def test_each_kind_reads_and_warns_as_before(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, case: Read
) -> None:
    monkeypatch.setattr("spanbatch._setting._warned", set())
    for variable, raw in case.environment.items():
        monkeypatch.setenv(variable, raw)
    with caplog.at_level(logging.WARNING):
        assert read(case.setting, case.backend) == case.value
    expected = [(case.logger, case.warning)] if case.warning else []
    assert [(r.name, r.getMessage()) for r in caplog.records] == expected
