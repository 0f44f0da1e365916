"""README.md as written: every fenced code block is run, or checked and marked as not run (snippets as tests).

Python blocks run as written in a fresh interpreter, with OTLP exporters pointed at a ``spanbatch.testing``
receiver on 127.0.0.1 (nothing leaves the machine). A block that uses names of the reader's own (``provider``,
an exporter, ``run_agent_turn``) says so in the marker right above it, ``<!-- snippet: given a, b (why) -->``,
and the test defines exactly those names first. A block that cannot run carries
``<!-- snippet: not run (why) -->``: its shell commands are checked instead (``dev.py`` commands and nox sessions
exist, ``pip install`` extras exist, demo arguments parse), never run, as they build and run the whole suite.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import spanbatch
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanbatch import BatchSpanProcessor, SpanStats
from spanbatch.demo._cli import parser as demo_parser
from spanbatch.testing import OTLPReceiver

from tests.helpers.threads import without_sdk_flush_at_exit

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# Where noxfile.py's build session writes the wheel and sdist.
BUILT = "target/dist"

_FENCE = re.compile(r"^```(?P<language>\S*)\s*$")
_MARKER = re.compile(r"^<!-- snippet: (?:(?P<not_run>not run)|given (?P<given>[\w, ]+)) \((?P<why>[^)]+)\) -->$")
_LANGUAGES = {"python", "sh", ""}


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int  # 1-based line of the opening fence
    section: str
    marker: re.Match[str] | None

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-")
        return f"{slug}-L{self.line}"

    @property
    def runs(self) -> bool:
        return self.language == "python" and not (self.marker and self.marker["not_run"])

    @property
    def given(self) -> list[str]:
        names = self.marker["given"] if self.marker else None
        return [name.strip() for name in names.split(",")] if names else []


def _blocks() -> list[Block]:
    lines = README.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    section = "top"
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        fence = _FENCE.match(line)
        if fence:
            end = lines.index("```", index + 1)
            marker = _MARKER.match(lines[index - 1]) if index else None
            blocks.append(Block(fence["language"], "\n".join(lines[index + 1 : end]), index + 1, section, marker))
            index = end
        index += 1
    return blocks


BLOCKS = _blocks()
PYTHON_BLOCKS = [b for b in BLOCKS if b.runs]
SHELL_BLOCKS = [b for b in BLOCKS if b.language == "sh"]


def _prose() -> str:
    """The README without its fenced blocks and HTML comments: where inline `code` lives."""
    text = re.sub(r"^```.*?^```$", "", README.read_text(encoding="utf-8"), flags=re.S | re.M)
    return re.sub(r"<!--.*?-->", "", text, flags=re.S)


# ---- markers -----------------------------------------------------------------------------------------


def test_the_blocks_are_found() -> None:
    assert PYTHON_BLOCKS
    assert SHELL_BLOCKS
    assert any(b.section == "Usage" for b in PYTHON_BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_every_block_runs_or_says_why_not(block: Block) -> None:
    assert block.language in _LANGUAGES, f"README line {block.line}: no checker for ```{block.language} blocks"
    if block.language != "python":
        says_why = block.marker is not None and block.marker["not_run"] is not None
        assert says_why, (
            f"README line {block.line}: a ```{block.language or '(text)'} block cannot run here; put "
            "`<!-- snippet: not run (why) -->` on the line above it"
        )


def test_every_marker_sits_right_above_a_block() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines[:-1], start=1):
        if line.startswith("<!-- snippet"):
            assert _MARKER.match(line), f"README line {number}: malformed snippet marker {line!r}"
            assert _FENCE.match(lines[number]), f"README line {number}: a snippet marker not right above a block"


# ---- Python blocks: run as written -------------------------------------------------------------------

# Names a block may take from the reader's own code, and how the test stands in for each.
# The exporters are the stock OTLP/HTTP one, which reads the endpoint the test sets in the environment.
_STOCK_HTTP = "from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as _Stock\n"
GIVENS = {
    "provider": "from opentelemetry.sdk.trace import TracerProvider\nprovider = TracerProvider()",
    "phoenix_exporter": _STOCK_HTTP + "phoenix_exporter = _Stock()",
    "langfuse_exporter": _STOCK_HTTP + "langfuse_exporter = _Stock()",
    "run_agent_turn": "def run_agent_turn():\n    provider.get_tracer('readme').start_span('agent turn').end()",
}
_EXPORTER_GIVENS = {"phoenix_exporter", "langfuse_exporter"}


def _names_read(code: str) -> set[str]:
    return {node.id for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Name)}


def _imports(code: str) -> set[str]:
    return {node.module or "" for node in ast.walk(ast.parse(code)) if isinstance(node, ast.ImportFrom)}


def _shown_output(code: str) -> list[str]:
    """The output a block shows: the comment lines right after each ``print(...)``, joined."""
    shown: list[str] = []
    lines = code.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("print("):
            comments = []
            for following in lines[index + 1 :]:
                if not following.startswith("#"):
                    break
                comments.append(following.lstrip("#").strip())
            shown.append(" ".join(comments))
    return shown


def _shape(text: str) -> str:
    """Output with its numbers blanked and its spacing collapsed: the names, types and layout remain."""
    return " ".join(re.sub(r"\d+", "N", text).split())


@pytest.fixture(scope="module")
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver("http") as rx:
        yield rx


@pytest.mark.timeout(90)
@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.id)
def test_python_block_runs_as_written(block: Block, receiver: OTLPReceiver, tmp_path: Path) -> None:
    if "spanbatch.exporter" in _imports(block.code):
        # The same rule as the exporter's own tests; the README says it above the block.
        pytest.importorskip("opentelemetry.exporter.otlp.common.http", reason="needs the OTLP exporters >= 1.45")
    unknown = set(block.given) - set(GIVENS)
    assert not unknown, f"README line {block.line}: no stand-in for {sorted(unknown)}; add one to GIVENS"
    unused = set(block.given) - _names_read(block.code)
    assert not unused, f"README line {block.line}: the marker gives {sorted(unused)}, which the block never uses"
    script = tmp_path / f"{block.id}.py"
    script.write_text("\n".join([*(GIVENS[name] for name in block.given), block.code, ""]), encoding="utf-8")
    receiver.reset()
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_TIMEOUT": "5",
    }
    # A fresh interpreter in an empty directory: the block sees the installed package and nothing else.
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path, check=False
    )
    assert done.returncode == 0, f"README line {block.line} failed:\n{done.stderr}"
    assert "Traceback" not in without_sdk_flush_at_exit(done.stderr), done.stderr

    shown = _shown_output(block.code)
    printed = done.stdout.splitlines()
    assert len(printed) == len(shown), f"README line {block.line} shows {shown}, the block printed {printed}"
    for expected, actual in zip(shown, printed, strict=True):
        assert _shape(actual) == _shape(expected), f"README line {block.line} shows {expected!r}; printed {actual!r}"

    if "run_agent_turn" in block.given:
        # Every backend the block wires up received the turn's span, exactly once each.
        backends = len(_EXPORTER_GIVENS & set(block.given))
        assert receiver.wait_for(lambda s: s.spans >= backends, timeout=5)
        assert receiver.span_names() == {"agent turn": backends}


def test_stats_dropped_prints_as_a_dict_and_stays_read_only() -> None:
    processor = BatchSpanProcessor(InMemorySpanExporter())
    try:
        dropped = processor.stats().dropped
        assert (
            repr(dropped)
            == "{'queue_full': 0, 'shutdown': 0, 'export_failed': 0, 'fork': 0, 'unencodable': 0, 'too_large': 0}"
        )
        assert "dropped={'queue_full': 0," in repr(processor.stats())
        assert dropped == {
            "queue_full": 0,
            "shutdown": 0,
            "export_failed": 0,
            "fork": 0,
            "unencodable": 0,
            "too_large": 0,
        }
        with pytest.raises(TypeError):
            dropped["queue_full"] = 1  # type: ignore[index]
        assert (processor.stats() + processor.stats()).dropped == dropped
    finally:
        processor.shutdown()
    # Built by hand from a dict, the snapshot keeps its own copy.
    counts = {"queue_full": 1}
    stats = SpanStats(enqueued=1, dropped=counts)
    counts["queue_full"] = 5
    assert repr(stats) == (
        "SpanStats(enqueued=1, exported=0, queued=0, in_flight=0, batches=0, export_errors=0, "
        "dropped={'queue_full': 1}, retried=0)"
    )


@pytest.mark.timeout(30)
def test_pipeline_stats_counts_a_span_once_per_lane_as_the_readme_says() -> None:
    provider = TracerProvider()
    pipeline = spanbatch.install(provider, {"phoenix": InMemorySpanExporter(), "langfuse": InMemorySpanExporter()})
    try:
        provider.get_tracer("readme").start_span("agent turn").end()
        assert pipeline.force_flush(10_000)
        assert (pipeline.stats().enqueued, pipeline.stats().exported) == (2, 2)
        assert {name: s.exported for name, s in pipeline.stats_by_backend().items()} == {"phoenix": 1, "langfuse": 1}
    finally:
        provider.shutdown()


# ---- shell commands: checked, not run ----------------------------------------------------------------


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pyproject() -> dict[str, Any]:
    """The pyproject ``pip install .`` reads (tomllib from 3.11; pytest brings tomli before that)."""
    try:
        import tomllib  # noqa: PLC0415
    except ImportError:
        import tomli as tomllib  # noqa: PLC0415
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def _nox_sessions() -> dict[str, list[str]]:
    """Each session the noxfile declares, with its per-interpreter names (``tests`` -> ``tests-3.9`` …),
    read from its source: nox itself need not be installed."""
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    constants = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    sessions: dict[str, list[str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "nox.session":
                sessions[node.name] = []
                for keyword in decorator.keywords:
                    value = keyword.value
                    value = constants.get(value.id, value) if isinstance(value, ast.Name) else value
                    if keyword.arg == "python" and isinstance(value, ast.List):
                        sessions[node.name] = [f"{node.name}-{ast.literal_eval(v)}" for v in value.elts]
    return sessions


def _session_names() -> set[str]:
    return {name for base, variants in _nox_sessions().items() for name in [base, *variants]}


def _selected_sessions(nox_args: list[str]) -> list[str]:
    options = nox_args[: nox_args.index("--")] if "--" in nox_args else nox_args
    sessions: list[str] = []
    for index, arg in enumerate(options):
        if arg in ("-s", "--session", "--sessions"):
            sessions.extend(itertools.takewhile(lambda a: not a.startswith("-"), options[index + 1 :]))
    return sessions


def _check_demo_args(args: list[str], command: str) -> None:
    try:
        demo_parser().parse_args(args)
    except SystemExit:
        pytest.fail(f"README: the demo refuses the arguments of {command!r}")


def _check_command(command: str) -> None:
    words = shlex.split(command, comments=True)
    if words[:2] == ["python3", "dev.py"]:
        dev = _load(ROOT / "dev.py")
        nox_args = dev.nox_arguments(words[2:])
        assert nox_args is not None, f"README: {command!r} is not a dev.py command ({', '.join(dev.COMMANDS)})"
        unknown = set(_selected_sessions(nox_args)) - _session_names()
        assert not unknown, f"README: {command!r} names nox sessions the noxfile lacks: {sorted(unknown)}"
        if words[2] == "demo" and "--" in words:
            _check_demo_args(words[words.index("--") + 1 :], command)
    elif words[:2] == ["pip", "install"]:
        extras = set(_pyproject()["project"]["optional-dependencies"])
        for spec in (w for w in words[2:] if not w.startswith("-")):
            if spec.startswith(f"{BUILT}/") and spec.endswith(".whl"):
                assert '"target" / "dist"' in (ROOT / "noxfile.py").read_text(), "the build session writes elsewhere"
                continue
            match = re.fullmatch(r"\.(?:\[(?P<extras>[\w,-]+)\])?", spec)
            assert match, f"README: {command!r} installs {spec!r}, not this project"
            wanted = set(match["extras"].split(",")) if match["extras"] else set()
            assert wanted <= extras, f"README: {command!r} asks for extras {sorted(wanted - extras)} that do not exist"
    elif words[:4] == ["python", "-m", "spanbatch", "demo"]:
        _check_demo_args(words[4:], command)
    else:
        pytest.fail(f"README: no checker for the command {command!r}")


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda b: b.id)
def test_shell_block_commands_are_real(block: Block) -> None:
    for line in block.code.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            _check_command(line)


def test_commands_in_the_prose_are_real() -> None:
    spans = re.findall(r"`([^`\n]+)`", _prose())
    # nox is installed in dev.py's private virtualenv, not on the reader's PATH.
    assert not [s for s in spans if s.split()[0] == "nox"], "README: write `python3 dev.py …`, not `nox …`"
    commands = [s for s in spans if s.startswith(("python3 dev.py ", "python -m spanbatch "))]
    assert commands
    for command in commands:
        _check_command(command)


def test_dev_py_maps_its_commands_onto_nox() -> None:
    dev = _load(ROOT / "dev.py")
    assert dev.nox_arguments(["list"]) == dev.nox_arguments(["-l"]) == ["-l"]
    assert dev.nox_arguments(["soak"]) == ["-s", "soak"]
    one = ["-s", "tests-3.11", "--", "-k", "fork"]
    assert dev.nox_arguments(["test", *one]) == one
    assert dev.nox_arguments(["nope"]) is None
    assert dev.nox_arguments([]) is None


def test_quick_start_names_every_nox_session() -> None:
    quick_start = README.read_text(encoding="utf-8").split("## Quick start")[1].split("\n## ")[0]
    for base, variants in _nox_sessions().items():
        # A session per interpreter is named by its first and last: `tests-3.9` … `tests-3.13`.
        for name in [variants[0], variants[-1]] if variants else [base]:
            assert f"`{name}`" in quick_start, f"README's Quick start does not name the nox session {name}"


def test_dev_py_list_lists_every_session() -> None:
    pytest.importorskip("nox", reason="nox lists the sessions; dev.py installs it in its own virtualenv")
    dev = _load(ROOT / "dev.py")
    done = subprocess.run(
        [sys.executable, "-m", "nox", "--noxfile", str(ROOT / "noxfile.py"), *dev.nox_arguments(["list"])],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    listed = set(re.findall(r"^[*-] (\S+)", done.stdout, flags=re.M))
    assert listed == {name for base, variants in _nox_sessions().items() for name in variants or [base]}
    assert "soak" in listed


# ---- the directory listing -----------------------------------------------------------------------------


def _walk_sources() -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk`` of the checkout without what builds and runs it make: walking a CI checkout's ``.nox``
    (a virtualenv per session) took longer than everything else in this file."""
    for found in os.walk(ROOT):
        found[1][:] = [d for d in found[1] if d not in {"target", ".git", ".nox", ".venv", "node_modules"}]
        yield found


def test_layout_names_only_files_that_exist() -> None:
    (layout,) = [b for b in BLOCKS if b.section == "Layout"]
    names = set(re.findall(r"\b[\w-]+\.(?:rs|py|pyi)\b|\b[\w-]+/(?!\w)", layout.code))
    present = {name for _, dirs, files in _walk_sources() for name in (*dirs, *files)}
    missing = {name for name in names if name.rstrip("/") not in present}
    assert not missing, f"README's Layout names files that do not exist: {sorted(missing)}"


def test_the_layout_names_every_module() -> None:
    (layout,) = [b for b in BLOCKS if b.section == "Layout"]
    named = set(re.findall(r"\b[\w-]+\.(?:rs|py|pyi)\b", layout.code))
    modules = [
        *(ROOT / "rust").rglob("*.rs"),
        *(ROOT / "python" / "spanbatch").glob("*.py"),
        *(ROOT / "python" / "spanbatch").glob("*.pyi"),
        *(ROOT / "python" / "spanbatch" / "exporter").glob("*.py"),
        *(ROOT / "python" / "spanbatch" / "testing").glob("*.py"),
    ]
    unnamed = sorted({m.name for m in modules} - named)
    assert not unnamed, f"README's Layout does not name: {unnamed}"
