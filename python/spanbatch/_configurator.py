"""Zero-code set-up: ``OTEL_PYTHON_CONFIGURATOR=spanbatch opentelemetry-instrument python app.py``.

The SDK's own configurator builds the exporters named by ``OTEL_TRACES_EXPORTER`` and
``OTEL_LOGS_EXPORTER`` exactly as it always does; each is batched by spanbatch instead of the
stock processor (``BatchSpanProcessor``, ``BatchLogRecordProcessor``).

Only when asked for by name. ``opentelemetry-instrument`` runs the first configurator entry
point it finds when ``OTEL_PYTHON_CONFIGURATOR`` is unset, so spanbatch's, merely installed,
may be called instead of a distro's, or where no configurator would have run at all.

Named, it runs the configurator that would run without spanbatch (a vendor's distro, which adds
its own set-up to the SDK's) with spanbatch's processors, or the SDK's own where there is none.
"""

from __future__ import annotations

import inspect
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk import _configuration as sdk_configuration
from opentelemetry.sdk._configuration import _initialize_components, _OTelSDKConfigurator
from opentelemetry.util._importlib_metadata import EntryPoint, entry_points

from spanbatch import _settings
from spanbatch._setting import Setting, read
from spanbatch.log_processor import BatchLogRecordProcessor
from spanbatch.processor import BatchSpanProcessor

logger = logging.getLogger("spanbatch")

# The name of this configurator's entry point (pyproject.toml), which OTEL_PYTHON_CONFIGURATOR selects.
ENTRY_POINT_NAME = "spanbatch"
_OTEL_CONFIG_FILE = "OTEL_CONFIG_FILE"
# SDKs before 1.43 build the usual pipeline whatever OTEL_CONFIG_FILE says.
_SDK_READS_CONFIG_FILE = hasattr(sdk_configuration, _OTEL_CONFIG_FILE)

_warned_config_file = False


class SpanbatchConfigurator(_OTelSDKConfigurator):
    def _configure(self, **kwargs: Any) -> None:
        if read(_settings.CONFIGURATOR) != ENTRY_POINT_NAME:
            _configure_as_without_spanbatch(**kwargs)
            return
        processors: dict[str, _Counted] = {}
        if _SDK_READS_CONFIG_FILE and read(_settings.CONFIG_FILE):
            # As without spanbatch: the SDK's own warning then lists only the arguments it always gets.
            _warn_config_file_once()
        else:
            processors = {keyword: _Counted(processor) for keyword, processor in _batch_processors().items()}
        found = list(entry_points(group="opentelemetry_configurator"))
        beneath = _first_other(found)
        if beneath is None:
            super()._configure(**kwargs, **processors)  # type: ignore[no-untyped-call]
            return
        beneath.load()().configure(**kwargs, **processors)
        for keyword, processor in processors.items():
            signal = _SIGNALS[keyword]
            if processor.calls == 0 and _exporters_named(signal.exporters):
                logger.warning(
                    "The configurator %r, which spanbatch ran as opentelemetry-instrument would without it, did "
                    "not batch %s with spanbatch's processor (it builds its own processors).",
                    beneath.name,
                    signal.items,
                )


@dataclass(frozen=True)
class _Signal:
    """What the SDK's set-up takes a batch processor for, under one keyword."""

    items: str
    processor: type
    exporters: Setting[str | None]  # the variable that names its exporters


_SIGNALS = {
    "export_span_processor": _Signal("spans", BatchSpanProcessor, _settings.TRACES_EXPORTER),
    "export_log_record_processor": _Signal("log records", BatchLogRecordProcessor, _settings.LOGS_EXPORTER),
}


class _Counted:
    """A processor class as the set-up calls it, once per exporter, counting the calls: whether a configurator
    spanbatch ran passed it on to the SDK's set-up."""

    def __init__(self, processor: type) -> None:
        self.processor = processor
        self.calls = 0

    def __call__(self, exporter: Any) -> Any:
        self.calls += 1
        return self.processor(exporter)


def _exporters_named(variable: Setting[str | None]) -> bool:
    """Whether the SDK's set-up builds exporters from ``variable``: set, and not ``none`` (as it reads it)."""
    names = read(variable)
    return bool(names) and names is not None and names.lower().strip() != "none"


def _batch_processors() -> dict[str, type]:
    """spanbatch's processors for the set-up's keywords this SDK takes (both from SDK 1.40 on; before,
    none); a warning for each signal left to the stock one."""
    taken = inspect.signature(_initialize_components).parameters
    processors: dict[str, type] = {}
    for keyword, signal in _SIGNALS.items():
        if keyword in taken:
            processors[keyword] = signal.processor
        else:
            logger.warning(
                "This opentelemetry-sdk cannot take another processor for %s at set-up; they use the stock one.",
                signal.items,
            )
    return processors


def _first_other(found: list[EntryPoint]) -> EntryPoint | None:
    """The configurator ``opentelemetry-instrument`` would run were spanbatch not installed: the first entry point
    found that is not spanbatch's."""
    return next((entry_point for entry_point in found if entry_point.name != ENTRY_POINT_NAME), None)


def _configure_as_without_spanbatch(**kwargs: Any) -> None:
    """Run the configurator ``opentelemetry-instrument`` would have picked were spanbatch not installed.

    It picks the first entry point found, and skips the others as already loaded: so the first
    one that is not spanbatch's, or none at all when there is no other.
    """
    found = list(entry_points(group="opentelemetry_configurator"))
    entry_point = _first_other(found)
    if entry_point is None:
        return
    entry_point.load()().configure(**kwargs)
    # Lines counted by name: two distributions may name their entry points alike (opentelemetry-distro's
    # is "configurator"), each told of.
    told = Counter(other.name for other in found[found.index(entry_point) :] if other.name != ENTRY_POINT_NAME)
    _INSTRUMENT_LOGGER.addFilter(_SkippedFor(entry_point.name, told))


# The logger and line with which opentelemetry-instrument's loop tells of each configurator after the one it ran.
_INSTRUMENT_LOGGER = logging.getLogger("opentelemetry.instrumentation.auto_instrumentation._load")
_SKIPPED_LINE = "Configuration of %s not loaded, %s already loaded"


class _SkippedFor(logging.Filter):
    """Words opentelemetry-instrument's lines as they would be without spanbatch installed.

    Having called spanbatch's configurator, the loop tells of every later one as "not loaded, spanbatch already
    loaded": false for the one spanbatch ran in its stead (its first line, left out), and the others were skipped
    for that one (named instead). Removed once each of them (``told``, lines by name) was told of; a configure not
    called from that loop (by hand) leaves it waiting for a line that never comes, touching nothing else.
    """

    def __init__(self, ran: str, told: Counter[str]) -> None:
        super().__init__()
        self._ran = ran
        self._untold = told
        self._ran_told = False

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.msg != _SKIPPED_LINE or not isinstance(args, tuple) or args[1:] != (ENTRY_POINT_NAME,):
            return True
        self._untold[str(args[0])] -= 1
        if not +self._untold:
            _INSTRUMENT_LOGGER.removeFilter(self)
        if args[0] == self._ran and not self._ran_told:
            self._ran_told = True
            return False
        record.args = (args[0], self._ran)
        return True


def _warn_config_file_once() -> None:
    global _warned_config_file
    if _warned_config_file:
        return
    _warned_config_file = True
    logger.warning(
        "%s is set: the SDK builds its span processors from that file and ignores configurators, "
        "so spanbatch is not in use. Unset it to batch with spanbatch.",
        _OTEL_CONFIG_FILE,
    )
