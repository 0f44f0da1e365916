"""Fixtures shared by every test; what tests import lives in ``tests.helpers``."""

from __future__ import annotations

import logging
import os
import socket
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from spanbatch.testing import OTLPReceiver

from tests.helpers import PROCESSORS, HangingExporter

# The in-process recorders need the OTLP packages: imported by their fixtures, when a test asks for one.
if TYPE_CHECKING:
    from tests.helpers.receivers import GrpcRecorder, HttpRecorder

Processor = TypeVar("Processor")

# The stock loggers spanbatch writes some of its lines to, as the stock processors do. Each has the SDK's
# DuplicateFilter, which drops a line equal to the previous one within a 20 s window: a test that looks for
# "Queue full, dropping Span." would miss it whenever an earlier test wrote the same line in that window.
_STOCK_LOGGERS_WITH_DUPLICATE_FILTERS = (
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.sdk._logs._internal.export",
)


@pytest.fixture(autouse=True)
def _fresh_duplicate_filters() -> None:
    for name in _STOCK_LOGGERS_WITH_DUPLICATE_FILTERS:
        for log_filter in logging.getLogger(name).filters:
            log_filter.__dict__.pop("last_log", None)


@pytest.fixture
def shutdown_later() -> Iterator[Callable[[Processor], Processor]]:
    """Registers a processor (or pipeline) to be shut down when the test ends, whether it passed or not.

    ``processor = shutdown_later(BatchSpanProcessor(...))``. It keeps weak references, so a test that
    drops its processor on purpose still sees it collected; shutting down twice is a no-op.
    """
    registered: list[weakref.ref[Any]] = []

    def register(processor: Processor) -> Processor:
        registered.append(weakref.ref(processor))
        return processor

    yield register
    for ref in reversed(registered):
        processor = ref()
        if processor is not None:
            processor.shutdown()


@pytest.fixture
def hanging_exporter(shutdown_later: Callable[[Any], Any]) -> Iterator[HangingExporter]:
    # Set up after ``shutdown_later``, so torn down before it: released before its processor shuts down.
    exporter = HangingExporter()
    yield exporter
    exporter.release.set()


@pytest.fixture(params=sorted(PROCESSORS))
def processor_class(request: pytest.FixtureRequest) -> Any:
    """The stock BatchSpanProcessor and spanbatch's, for behaviour both must have."""
    return PROCESSORS[request.param]


@pytest.fixture(params=["http", "grpc"])
def receiver(request: pytest.FixtureRequest) -> Iterator[OTLPReceiver]:
    """An OTLP receiver in its own process, over each protocol."""
    with OTLPReceiver(request.param) as rx:
        yield rx


@pytest.fixture(params=["http", "grpc"])
def down_receiver(request: pytest.FixtureRequest) -> Iterator[OTLPReceiver]:
    """A receiver of each protocol, down until the test brings it up."""
    with OTLPReceiver(request.param) as rx:
        rx.set_behaviour("down")
        yield rx


@pytest.fixture
def quiet_stock_encoder() -> Iterator[None]:
    """The stock OTLP encoder silenced: it logs a traceback per value it leaves out, a long one for deep values."""
    stock = logging.getLogger("opentelemetry.exporter.otlp.proto.common._internal")
    stock.disabled = True
    yield
    stock.disabled = False


@pytest.fixture
def in_tmp_path(tmp_path: Path) -> Iterator[Path]:
    """The test runs in ``tmp_path`` as its working directory (a relative path lands there), then back."""
    before = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(before)


@pytest.fixture
def hanging_endpoint() -> Iterator[str]:
    """A loopback server that takes connections (the kernel's backlog does) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def http_receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver("http") as rx:
        yield rx


@pytest.fixture
def http_recorder() -> Iterator[HttpRecorder]:
    from tests.helpers.receivers import serve_http  # noqa: PLC0415

    with serve_http() as recorder:
        yield recorder


@pytest.fixture
def grpc_recorder() -> Iterator[GrpcRecorder]:
    from tests.helpers.receivers import serve_grpc  # noqa: PLC0415

    with serve_grpc() as recorder:
        yield recorder


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Reports cross to pytest-xdist's controller as UTF-8: text with a lone surrogate in it (the encoding tests log
    attribute keys such as "\\udcff", as the stock encoder does) stopped the whole run with an INTERNALERROR. Such
    text is kept, escaped, wherever a report carries text."""
    report: pytest.TestReport = yield
    report.sections = [(title, _escaped(text)) for title, text in report.sections]
    report.user_properties = [(name, _escaped_if_text(value)) for name, value in report.user_properties]
    if isinstance(report.longrepr, tuple):  # a skip: (path, line, reason)
        report.longrepr = tuple(_escaped_if_text(part) for part in report.longrepr)  # type: ignore[assignment]
    elif report.longrepr is not None and _escaped(str(report.longrepr)) != str(report.longrepr):
        report.longrepr = _escaped(str(report.longrepr))
    if hasattr(report, "wasxfail"):
        report.wasxfail = _escaped(report.wasxfail)
    return report


def _escaped(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _escaped_if_text(value: object) -> object:
    return _escaped(value) if isinstance(value, str) else value
