"""The one entry point: the wheel, tests on every CPython 3.10-3.13 present, lint, types, rust, bench, demo."""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
WHEELS = ROOT / "target" / "nox-wheels"

nox.options.sessions = ["rust", "lint", "types", "build", "tests", "floor", "upstream"]
# Absent interpreters are skipped with a message, on CI too: the machine decides what is there (nox is not to
# download one).
nox.options.error_on_missing_interpreters = False
nox.options.download_python = "never"
# uv (dev.py installs it beside nox) makes a session's virtualenv and installs into it several times faster
# than pip: eight sessions install on every .ci/run. Without uv, virtualenv and pip.
nox.options.default_venv_backend = "uv|virtualenv"


def _runs(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "pass"], check=False, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _expose_interpreters() -> list[str]:
    """Put installed-but-inactive interpreters (pyenv keeps them under versions/) on PATH; returns the versions
    of PYTHONS present."""
    extra, present = [], []
    for version in PYTHONS:
        found = shutil.which(f"python{version}")
        if found and _runs(found):
            present.append(version)
            continue
        pattern = os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")
        candidates = sorted(glob.glob(pattern), reverse=True)
        if candidates:
            extra.append(str(Path(candidates[0]).parent))
            present.append(version)
    if extra:
        os.environ["PATH"] = os.pathsep.join([*extra, os.environ.get("PATH", "")])
    return present


PRESENT = _expose_interpreters()
_built: list[Path] = []

# The suite waits on sockets, subprocesses and timeouts: alone it keeps 65 % of one core busy. One worker more
# than the cores keeps them busy (tests/ without reliability/ on 2 cores: 382 s alone, 218 s on 2 workers, 164 s
# on 3). The tests marked "alone" need the machine, or a process without xdist's thread, to themselves: they run
# after, one at a time, in pytest's own process.
WORKERS = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) + 1
RELIABILITY = ROOT / "tests" / "reliability"
# Reliability files whose subject is the interpreter itself (exit, SIGTERM, fork, tight loops that hand the GIL
# over): they run on the oldest CPython present too.
INTERPRETER_BOUND = {
    "test_exit.py",
    "test_fork.py",
    "test_logs_process.py",
    "test_pipeline_otlp.py",
    "test_spill_restart.py",
    "test_throughput.py",
    "test_tight_loop.py",
}


def _wheel(session: nox.Session) -> Path:
    """Build the abi3 wheel once per nox run, as users get it: release profile, linked against glibc 2.17
    (manylinux2014) with zig, so it installs on Debian 11, RHEL 8 or Amazon Linux 2 too. Every session and
    interpreter installs this one file (the throughput tests and the benchmarks need its speed)."""
    if not _built:
        out = WHEELS / "release"
        shutil.rmtree(out, ignore_errors=True)
        session.install("maturin>=1.9,<2", "ziglang")
        session.run("maturin", "build", "--release", "--zig", "--compatibility", "manylinux2014", "--out", str(out))
        _built.extend(out.glob("spanbatch-*.whl"))
    return _built[0]


def _without_rust() -> dict[str, str]:
    """The environment with every folder that holds ``cargo`` taken off PATH: the suite runs as a user's would."""
    kept = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and not (Path(p) / "cargo").exists()]
    return {"PATH": os.pathsep.join(kept)}


def _suite_env() -> dict[str, str]:
    """Where pytest runs: no cargo (``_without_rust``), and a crash (in the suite's process or an app it runs)
    prints every thread's Python stack, even at exit."""
    return {**_without_rust(), "PYTHONFAULTHANDLER": "1"}


def _install(session: nox.Session, extras: str = "test") -> None:
    session.install(f"{_wheel(session)}[{extras}]")


def _uninstall(session: nox.Session) -> list[str]:
    """The command that removes packages from the session's environment: uv's where uv made it (no pip there)."""
    if session.venv_backend == "uv":
        return ["uv", "pip", "uninstall", "-q"]
    return ["python", "-m", "pip", "uninstall", "-q", "-y"]


# Files of the main suite about the interpreter's own behaviour (exit, atexit hooks, finalization, signals and
# Ctrl-C, fork, threads, gevent), by the words their names use: every CPython present runs them. The others test
# what one abi3 binary and the Python around it do with data (encoding, settings, the spill store, exporters):
# the oldest and newest present run them all, and the versions between take turns, a file each in name order.
INTERPRETER_WORDS = re.compile(r"exit|fork|sigterm|signal|ctrl_c|interrupt|finaliz|thread|gevent|greenlet")


def _taken_in_turn(python: str) -> set[str]:
    """The main suite's files not about the interpreter that ``python`` leaves to the other versions between the
    oldest and newest present (empty on those two)."""
    between = PRESENT[1:-1]
    if python not in between:
        return set()
    names = sorted(path.name for path in (ROOT / "tests").glob("test_*.py") if not INTERPRETER_WORDS.search(path.stem))
    turn = between.index(python)
    return {name for index, name in enumerate(names) if index % len(between) != turn}


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The pytest suite against the installed abi3 wheel: everything on the newest CPython present; on the
    oldest, everything but the reliability files that do not depend on the interpreter; on the others,
    everything but tests/reliability/, and of the files not about the interpreter, their turn (see
    INTERPRETER_WORDS). Arguments after -- make one run (on one worker) of what they select."""
    _install(session)
    env = _suite_env()
    session.run("python", "-c", "import shutil, sys; sys.exit(shutil.which('cargo') is not None)", env=env)
    reliability = {path.name: path for path in RELIABILITY.glob("test_*.py")}
    if missing := INTERPRETER_BOUND - reliability.keys():
        session.error(f"INTERPRETER_BOUND names files tests/reliability/ does not have: {sorted(missing)}")
    # The end-to-end runs against real receivers take a third of the suite's time: on every CPython they would
    # take .ci/run past its 30 minutes on 2 cores. Where versions differ is the interpreter's own behaviour
    # (3.12 refuses to start a thread at exit, 3.10 and 3.13 allow it; the main suite covers that on each).
    if session.python == PRESENT[-1]:
        kept = set(reliability)
    elif session.python == PRESENT[0]:
        kept = INTERPRETER_BOUND
    else:
        kept = set()
    scope = [f"--ignore={path}" for name, path in reliability.items() if name not in kept]
    if not session.posargs:
        scope += [f"--ignore={ROOT / 'tests' / name}" for name in sorted(_taken_in_turn(str(session.python)))]
    # The slowest tests are listed: .ci/run has 30 minutes, and this is where they go.
    pytest = ["python", "-m", "pytest", "--durations=15", *scope]
    if session.posargs:
        session.run(*pytest, *session.posargs, env=env)
        return
    if session.python != PRESENT[-1]:  # the encoder's property tests draw every example on the newest only
        env["SPANBATCH_TESTS_EXAMPLES_SHARE"] = "0.25"
    failed = []
    for selection in (["-m", "not alone", f"--numprocesses={WORKERS}"], ["-m", "alone"]):
        try:  # both runs, whatever the first found
            session.run(*pytest, *selection, env=env)
        except nox.command.CommandFailed:
            failed.append(selection[1])
    if failed:
        session.error(f"tests failed in the runs of: {', '.join(failed)}")


# The oldest opentelemetry release pyproject.toml declares (api and sdk >= 1.27), with that release's exporters,
# instrumentation and semantic conventions, as a user on it has them.
FLOOR = [
    *(
        f"opentelemetry-{project}==1.27.0"
        for project in ("api", "sdk", "proto", *(f"exporter-otlp-proto-{p}" for p in ("common", "http", "grpc")))
    ),
    "opentelemetry-instrumentation==0.48b0",
    "opentelemetry-semantic-conventions==0.48b0",
    "setuptools<81",  # that instrumentation's opentelemetry-instrument imports pkg_resources
]
# What the newest exporters bring and no 1.27 user has.
FLOOR_ABSENT = ["opentelemetry-exporter-http-transport", "opentelemetry-exporter-otlp-common"]
# The files about the processors, the pipeline and what the installed release changes; the others test the
# newest stock behaviour (or spanbatch's exporters, which need newer stock ones and refuse older at import).
FLOOR_TESTS = [
    f"tests/{name}.py"
    for name in (
        "test_oldest_supported_sdk",
        "test_old_sdk_full_queue_is_warned_once_per_processor",
        "test_engine",
        "test_pipeline",
        "test_fork",
        "test_export_many",
        "test_policies",
        "test_interrupt",
        "test_queue_storage",
        "test_read_ahead_on_end",
        "test_abandon_read_ahead",
    )
]


@nox.session(python=PYTHONS[0])
def floor(session: nox.Session) -> None:
    """The suite's processor files against the oldest declared opentelemetry release, from the same wheel."""
    _install(session)
    session.install(*FLOOR)
    session.run(*_uninstall(session), *FLOOR_ABSENT)
    session.run("python", "-m", "pytest", *FLOOR_TESTS, *session.posargs, env=_suite_env())


@nox.session(python="3.11")
def build(session: nox.Session) -> None:
    """The sdist and the manylinux2014 abi3 wheel in target/dist; auditwheel must agree on the tag,
    and the sdist must build and import."""
    dist = ROOT / "target" / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    wheel = _wheel(session)
    session.install("auditwheel>=6")
    shown = str(session.run("auditwheel", "show", str(wheel), silent=True))
    # auditwheel names the most compatible tag the wheel's symbols allow: "manylinux_2_17_x86_64".
    glibc = re.search(r'"manylinux_2_(\d+)_', shown)
    if glibc is None or int(glibc.group(1)) > 17:
        session.error(f"{wheel.name} needs a glibc newer than 2.17:\n{shown}")
    session.run("maturin", "sdist", "--out", str(dist))
    dist.mkdir(parents=True, exist_ok=True)
    shutil.copy2(wheel, dist)
    (sdist,) = dist.glob("spanbatch-*.tar.gz")
    # The quick dev profile: what is checked is that the sdist builds and imports (the release profile's fat LTO
    # took 63 s here against 43).
    session.install("--force-reinstall", str(sdist), env={"MATURIN_PEP517_ARGS": "--profile dev"})
    session.run("python", "-c", "import spanbatch, spanbatch._core; print('sdist build imports', spanbatch.__name__)")


# OpenTelemetry's own tests, run against spanbatch's classes by tests/upstream/spanbatch_upstream.py.
# Fetched from PyPI (the sdists ship their tests), never vendored.
UPSTREAM_VERSION = "1.45.2"
UPSTREAM_DIR = ROOT / "target" / "upstream"
# tests/logs/test_export.py's cases that build a BatchLogRecordProcessor (spanbatch's, by the plugin); its other
# cases test the stock simple processor and exporters. test_batch_processor.py runs every case for both processors.
UPSTREAM_LOG_CASES = [
    "tests/logs/test_export.py::TestBatchLogRecordProcessor",
    *(
        f"tests/logs/test_export.py::TestSimpleLogRecordProcessor::test_simple_log_record_processor_{case}"
        for case in ("different_msg_types", "custom_single_obj", "different_msg_types_with_formatter")
    ),
]
UPSTREAM_SUITES = {
    "opentelemetry-sdk": (
        ["tests/trace/export/test_export.py", "tests/shared_internal/test_batch_processor.py", *UPSTREAM_LOG_CASES],
        [],
    ),
    "opentelemetry-exporter-otlp-proto-http": (
        ["tests/test_proto_span_exporter.py", "tests/test_proto_log_exporter.py"],
        # Patches the stock encoder (encode_spans), which spanbatch's Rust encoder does not call (README).
        ["tests/test_proto_span_exporter.py::TestOTLPSpanExporter::test_export_encoding_failure"],
    ),
    "opentelemetry-exporter-otlp-proto-grpc": (
        [
            "tests/test_otlp_trace_exporter.py",
            "tests/test_otlp_exporter_mixin.py",
            "tests/logs/test_otlp_logs_exporter.py",
        ],
        [],
    ),
}


def _index_entry(page: str, filename: str) -> tuple[str, str]:
    """The URL and sha256 of ``filename`` on a simple-index ``page``: its JSON form (PEP 691) where the index
    serves one, else the links of its HTML form (PEP 503), which name the hash after ``#sha256=``."""
    accept = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
    with urllib.request.urlopen(urllib.request.Request(page, headers={"Accept": accept}), timeout=60) as answer:
        kind, body = answer.headers.get_content_type(), answer.read().decode()
    if kind.endswith("+json"):
        (entry,) = (entry for entry in json.loads(body)["files"] if entry["filename"] == filename)
        return urllib.parse.urljoin(page, entry["url"]), entry["hashes"]["sha256"]
    (link,) = set(re.findall(r'href="([^"#]*/' + re.escape(filename) + r'#sha256=[0-9a-f]{64})"', body))
    url, sha256 = link.split("#sha256=")
    return urllib.parse.urljoin(page, url), sha256


def _upstream_sources(session: nox.Session, project: str) -> Path:
    """The unpacked sdist of ``project`` at UPSTREAM_VERSION, downloaded once from the package index pip uses.

    Read from the index's JSON page (PEP 691) and checked against its sha256, not with ``pip download``: pip
    prepares an sdist's metadata, building its build backend first (69 s of a 130 s session here)."""
    unpacked = UPSTREAM_DIR / f"{project.replace('-', '_')}-{UPSTREAM_VERSION}"
    if not (unpacked / "tests").is_dir():
        index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
        name = f"{project.replace('-', '_')}-{UPSTREAM_VERSION}.tar.gz"
        url, sha256 = _index_entry(f"{index}/{project}/", name)
        with urllib.request.urlopen(url, timeout=120) as answer:
            archive = answer.read()
        if hashlib.sha256(archive).hexdigest() != sha256:
            session.error(f"{name}: its sha256 is not the one the index gives")
        session.log(f"{name}: {len(archive):,} bytes from {index}")
        with tarfile.open(fileobj=io.BytesIO(archive)) as sdist:
            # The "data" filter refuses links and paths that leave the folder (Python >= 3.9.17).
            sdist.extractall(UPSTREAM_DIR, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return unpacked


@nox.session(python="3.11")
def upstream(session: nox.Session) -> None:
    """opentelemetry-sdk's and the OTLP exporters' own tests, against spanbatch's processor and exporters."""
    _install(session)
    session.install(
        *(f"{project}=={UPSTREAM_VERSION}" for project in UPSTREAM_SUITES),
        # What the upstream tests import beyond the packages under test.
        "opentelemetry-test-utils==0.66b2",
        "mocket==3.15.0",
    )
    failed = []
    for project, (files, deselected) in UPSTREAM_SUITES.items():
        sources = _upstream_sources(session, project)
        with session.chdir(sources):
            try:
                # The sdist is unpacked under this checkout: without its own config file and rootdir, pytest
                # takes ours (test ids then start at target/, and --deselect matched nothing).
                session.run(
                    "python", "-m", "pytest", "-p", "spanbatch_upstream", "-p", "no:cacheprovider",
                    "-c", "pyproject.toml", "--rootdir=.", "--timeout=30", "-q",
                    *(f"--deselect={test}" for test in deselected), *files, *session.posargs,
                    env={"PYTHONPATH": str(ROOT / "tests" / "upstream")},
                )  # fmt: skip
            except nox.command.CommandFailed:
                failed.append(project)
    if failed:
        session.error(f"upstream tests failed: {', '.join(failed)}")


@nox.session(python=False)
def rust(session: nox.Session) -> None:
    """Rust unit tests for the queue, counters and wake-up."""
    # The test binary embeds Python: build it for the interpreter running nox and let it find that
    # interpreter's libpython, whichever CPythons nox put first on PATH.
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    env = {
        "PYO3_PYTHON": sys.executable,
        "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [libdir, os.environ.get("LD_LIBRARY_PATH", "")])),
    }
    # A hung thread test must fail CI, not stall it.
    session.run("timeout", "600", "cargo", "test", "--quiet", external=True, env=env)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", "python", "tests", "noxfile.py", "dev.py")
    session.run("ruff", "format", "--check", "python", "tests", "noxfile.py", "dev.py")
    session.run("cargo", "fmt", "--check", external=True)
    session.run("cargo", "clippy", "--all-targets", "--quiet", "--", "-D", "warnings", external=True)


@nox.session(python="3.11")
def types(session: nox.Session) -> None:
    _install(session, extras="test,dev")
    session.run("mypy")
    session.run("python", "-m", "mypy.stubtest", "spanbatch._core")


@nox.session(python="3.11")
def demo(session: nox.Session) -> None:
    """The stock processor and spanbatch on one synthetic agent workload; arguments after -- go to the demo."""
    extras = "otlp,demo" if any(arg.startswith("--plot") for arg in session.posargs) else "otlp"
    _install(session, extras=extras)
    session.run("python", "-m", "spanbatch", "demo", *session.posargs)


@nox.session(python="3.11")
def soak(session: nox.Session) -> None:
    """The reliability suite for several minutes: slow soaks included, many more state-machine runs.

    The hypothesis seed is printed first; pass ``-- --hypothesis-seed=N`` to replay a failure.
    """
    _install(session)
    seed = next((a.split("=", 1)[1] for a in session.posargs if a.startswith("--hypothesis-seed=")), None)
    seed = seed or str(random.randrange(2**32))
    session.log(f"hypothesis seed {seed}: replay with  python3 dev.py soak -- --hypothesis-seed={seed}")
    args = [a for a in session.posargs if not a.startswith("--hypothesis-seed=")]
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/reliability",
        "-m",
        "slow or not slow",
        f"--hypothesis-seed={seed}",
        "--timeout=1800",
        *args,
        env={"SPANBATCH_SOAK_EXAMPLES": "600"},
    )


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks side by side with the stock processor (and fastotel, a peer), on a release build."""
    _install(session)
    # A peer to compare with, never a dependency of the package: its wheel needs CPython >= 3.11.
    session.install("fastotel")
    out = ROOT / "target" / "bench.json"
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/benchmarks",
        "--benchmark-only",
        "--benchmark-columns=min,median,ops",
        f"--benchmark-json={out}",
        "-p",
        "no:randomly",
        *session.posargs,
    )
    session.run("python", "-m", "tests.benchmarks.report", str(out))
