"""spanbatch's configurator applies only when asked for, and says so when the SDK cannot use it.

Real ``opentelemetry-instrument`` runs (or the ``initialize()`` its sitecustomize calls), each in a
subprocess. ``opentelemetry-instrument`` runs the first configurator entry point it finds when
``OTEL_PYTHON_CONFIGURATOR`` is unset, so merely installing spanbatch must change nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk import _configuration

pytest.importorskip("opentelemetry.instrumentation.auto_instrumentation", reason="needs opentelemetry-instrumentation")

pytestmark = pytest.mark.timeout(60)

# What the app sees: the global provider's type and the module of each of its span processors.
SHOW_PROVIDER = """
from opentelemetry import trace
provider = trace.get_tracer_provider()
processors = getattr(getattr(provider, "_active_span_processor", None), "_span_processors", ())
print("provider:", type(provider).__name__, [type(p).__module__ for p in processors], flush=True)
"""

# Another configurator (a distro's, say), as an installed distribution with its entry point.
FAKE_CONFIGURATOR = """
from opentelemetry.sdk._configuration import _BaseConfigurator

class FakeConfigurator(_BaseConfigurator):
    def _configure(self, **kwargs):
        print("fake configured with", sorted(kwargs), flush=True)
"""


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPANBATCH_"))}
    # Nothing in these runs needs a backend: only which configurator ran, and what it built.
    env.update(OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    env.update(extra)
    return env


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=45, check=False)
    assert done.returncode == 0, done.stderr
    return done


def instrumented(app: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    instrument = shutil.which("opentelemetry-instrument")
    if instrument is None:
        pytest.skip("needs opentelemetry-instrument")
    return run([instrument, sys.executable, "-c", app], env)


# A vendor's distro: the SDK's set-up, with something of its own added (here a resource attribute).
VENDOR_CONFIGURATOR = """
from opentelemetry.sdk._configuration import _OTelSDKConfigurator

class FakeConfigurator(_OTelSDKConfigurator):
    def _configure(self, **kwargs):
        print("vendor configured", flush=True)
        super()._configure(**kwargs, resource_attributes={"vendor.distro": "acme"})
"""


def installed_configurator(
    directory: Path, name: str, entry_point: str | None = None, source: str = FAKE_CONFIGURATOR
) -> Path:
    """``directory``, made to hold an installed distribution ``<name>conf`` with configurator entry point
    ``entry_point`` (by default ``name``), whose class ``source`` defines."""
    directory.mkdir(exist_ok=True)
    (directory / f"{name}conf.py").write_text(source.replace("fake configured", f"{name} configured"))
    info = directory / f"{name}conf-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}conf\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[opentelemetry_configurator]\n{entry_point or name} = {name}conf:FakeConfigurator\n"
    )
    return directory


@pytest.fixture
def fake_configurator(tmp_path: Path) -> Path:
    """A directory holding an installed distribution ``fakeconf`` with configurator entry point ``fake``."""
    return installed_configurator(tmp_path, "fake")


def initialized_after(*directories: Path) -> str:
    """An app that finds configurators in ``directories`` after spanbatch's, then runs what
    ``opentelemetry-instrument`` runs (its sitecustomize's ``initialize()``)."""
    paths = "".join(f"sys.path.append({str(directory)!r})\n" for directory in directories)
    return (
        f"import sys\n{paths}"
        "from opentelemetry.instrumentation.auto_instrumentation import initialize\n"
        "initialize()\n" + SHOW_PROVIDER
    )


def test_a_plain_zero_code_run_is_not_configured_by_spanbatch() -> None:
    # No distro and no OTEL_PYTHON_CONFIGURATOR: without spanbatch nothing sets the SDK up.
    done = instrumented(SHOW_PROVIDER, clean_env())
    assert "provider: ProxyTracerProvider []" in done.stdout, done.stdout + done.stderr


def test_asked_for_by_name_spanbatch_batches_the_configured_exporters() -> None:
    done = instrumented(SHOW_PROVIDER, clean_env(OTEL_PYTHON_CONFIGURATOR="spanbatch"))
    assert "provider: TracerProvider ['spanbatch.processor']" in done.stdout, done.stdout + done.stderr


def test_found_first_but_not_asked_for_it_runs_the_configurator_that_would_have_run(
    fake_configurator: Path,
) -> None:
    # The other configurator is found after spanbatch's, so opentelemetry-instrument calls
    # spanbatch's: it must do what would have happened without spanbatch installed, and say so.
    done = run([sys.executable, "-c", initialized_after(fake_configurator)], clean_env())
    assert done.stdout.count("fake configured with ['auto_instrumentation_version']") == 1, done.stdout
    assert "provider: ProxyTracerProvider []" in done.stdout, done.stdout + done.stderr
    # Without spanbatch it is the only configurator, and nothing is told of it as not loaded.
    assert "not loaded" not in done.stderr, done.stderr


# Without spanbatch, opentelemetry-instrument runs the first configurator it finds and warns that the next was not
# loaded for it, by their entry points' names, which two distributions may share (opentelemetry-distro's is
# "configurator").
@pytest.mark.parametrize(
    ("entry_point", "told"),
    [
        (None, "Configuration of second not loaded, first already loaded"),  # each named after its distribution
        ("configurator", "Configuration of configurator not loaded, configurator already loaded"),
    ],
    ids=["own-names", "a-shared-name"],
)
def test_found_first_but_not_asked_for_the_next_ones_are_told_as_skipped_as_without_spanbatch(
    tmp_path: Path, entry_point: str | None, told: str
) -> None:
    app = initialized_after(
        installed_configurator(tmp_path / "a", "first", entry_point),
        installed_configurator(tmp_path / "b", "second", entry_point),
    )
    done = run([sys.executable, "-c", app], clean_env())
    assert done.stdout.count("first configured") == 1, done.stdout
    assert "second configured" not in done.stdout, done.stdout
    assert [line for line in done.stderr.splitlines() if "not loaded" in line] == [told], done.stderr


def test_found_after_another_configurator_it_changes_nothing(fake_configurator: Path) -> None:
    done = instrumented(SHOW_PROVIDER, clean_env(PYTHONPATH=str(fake_configurator)))
    assert done.stdout.count("fake configured with ['auto_instrumentation_version']") == 1, done.stdout
    assert "provider: ProxyTracerProvider []" in done.stdout, done.stdout + done.stderr


def test_asked_for_with_a_vendors_configurator_installed_it_runs_that_one_with_spanbatchs_processors(
    tmp_path: Path,
) -> None:
    # Without spanbatch, opentelemetry-instrument runs the vendor's: named, spanbatch keeps its set-up (it ran
    # the SDK's own instead, and the vendor's additions were lost).
    vendor = installed_configurator(tmp_path, "vendor", source=VENDOR_CONFIGURATOR)
    app = SHOW_PROVIDER + 'print("vendor.distro:", provider.resource.attributes.get("vendor.distro"), flush=True)\n'
    done = instrumented(app, clean_env(PYTHONPATH=str(vendor), OTEL_PYTHON_CONFIGURATOR="spanbatch"))
    assert done.stdout.count("vendor configured") == 1, done.stdout + done.stderr
    assert "vendor.distro: acme" in done.stdout, done.stdout + done.stderr
    assert "provider: TracerProvider ['spanbatch.processor']" in done.stdout, done.stdout + done.stderr
    assert "did not batch" not in done.stderr, done.stderr


def test_asked_for_with_a_configurator_that_builds_its_own_processors_it_says_so(fake_configurator: Path) -> None:
    done = instrumented(
        SHOW_PROVIDER, clean_env(PYTHONPATH=str(fake_configurator), OTEL_PYTHON_CONFIGURATOR="spanbatch")
    )
    expected = "['auto_instrumentation_version', 'export_log_record_processor', 'export_span_processor']"
    assert done.stdout.count(f"fake configured with {expected}") == 1, done.stdout + done.stderr
    # It sets nothing up (OTEL_TRACES_EXPORTER names an exporter; OTEL_LOGS_EXPORTER none): told for spans only.
    assert "provider: ProxyTracerProvider []" in done.stdout, done.stdout + done.stderr
    assert done.stderr.count("did not batch spans with spanbatch's processor") == 1, done.stderr
    assert "did not batch log records" not in done.stderr, done.stderr


def test_otel_config_file_warns_once_that_spanbatch_is_not_in_use(tmp_path: Path) -> None:
    config = tmp_path / "otel.yaml"
    config.write_text('file_format: "1.0"\n')
    done = instrumented(SHOW_PROVIDER, clean_env(OTEL_PYTHON_CONFIGURATOR="spanbatch", OTEL_CONFIG_FILE=str(config)))
    if hasattr(_configuration, "OTEL_CONFIG_FILE"):
        # The SDK then builds everything from the file (or fails to, without opentelemetry-configuration).
        assert done.stderr.count("spanbatch is not in use") == 1, done.stderr
        assert "spanbatch.processor" not in done.stdout
    else:
        # An SDK that does not read the file (before 1.45) sets up the usual pipeline, with spanbatch.
        assert "spanbatch is not in use" not in done.stderr
        assert "provider: TracerProvider ['spanbatch.processor']" in done.stdout, done.stdout + done.stderr


# The log processors of the global LoggerProvider, by module.
SHOW_LOG_PROCESSORS = """
from opentelemetry._logs import get_logger_provider
provider = get_logger_provider()
multi = getattr(provider, "_multi_log_record_processor", None)
processors = getattr(multi, "_log_record_processors", ())
print("log processors:", [type(p).__module__ for p in processors], flush=True)
"""


def test_asked_for_by_name_spanbatch_batches_the_configured_log_exporters() -> None:
    env = clean_env(OTEL_PYTHON_CONFIGURATOR="spanbatch", OTEL_LOGS_EXPORTER="console")
    done = instrumented(SHOW_LOG_PROCESSORS, env)
    assert "log processors: ['spanbatch.log_processor']" in done.stdout, done.stdout + done.stderr
