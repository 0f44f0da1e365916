"""``OTLPReceiver``: an OTLP trace (and logs) back end in a child process, with counts and fault injection."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import TracebackType
from typing import TYPE_CHECKING, Any

from spanbatch.testing._store import ReceiverStats

if TYPE_CHECKING:
    from typing import Literal

    from opentelemetry.sdk._logs.export import LogRecordExporter
    from opentelemetry.sdk.trace.export import SpanExporter

    ProtocolName = Literal["http", "grpc"]
    BehaviourName = Literal["ok", "status", "hang", "hold", "down"]
else:
    ProtocolName = BehaviourName = str

logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.01


class ReceiverError(RuntimeError):
    """The receiver process failed to start, died, or did not answer a command in time."""


class _ExitedWhileStarting(ReceiverError):
    """The process died before it was ready: a crash in the server library, worth one more try."""


# Seen once in CI: the gRPC receiver process died at start-up (an epoll error inside grpcio).
_START_ATTEMPTS = 2


class OTLPReceiver:
    """An OTLP/HTTP or OTLP/gRPC trace receiver listening on 127.0.0.1 in its own process; it takes
    OTLP logs too (``/v1/logs``, the gRPC LogsService), counted in ``stats().log_records``.

    Running in another process keeps its decoding off the GIL of the code under test and
    lets a test take the back end down without touching the exporter's process::

        with OTLPReceiver("grpc") as rx:
            exporter = rx.span_exporter(timeout=2)
            ...
            assert rx.wait_for_spans(1000, timeout=10)
            assert rx.stats().duplicates == 0

    ``port`` 0 (the default) lets the system pick a free port. ``max_request_bytes`` limits a
    request's body as a backend does: over it, HTTP answers 413 and gRPC refuses the message
    (its max receive message size; unset, gRPC's own default of 4 MiB). The process exits when
    this object is closed or when its parent dies.
    """

    def __init__(
        self,
        protocol: ProtocolName = "http",
        *,
        port: int = 0,
        start_timeout: float = 30.0,
        command_timeout: float = 30.0,
        max_request_bytes: int | None = None,
    ) -> None:
        if protocol not in ("http", "grpc"):
            raise ValueError(f"protocol must be 'http' or 'grpc', not {protocol!r}")
        if max_request_bytes is not None and max_request_bytes <= 0:
            raise ValueError(f"max_request_bytes must be positive, not {max_request_bytes!r}")
        self.protocol: ProtocolName = protocol
        self.max_request_bytes = max_request_bytes
        self._command_timeout = command_timeout
        self._lock = threading.Lock()
        self._next_id = 0
        for attempt in range(1, _START_ATTEMPTS + 1):
            self._spawn(port)
            try:
                self.port: int = self._first_reply(start_timeout)
                return
            except _ExitedWhileStarting as error:
                self.close()
                if attempt == _START_ATTEMPTS:
                    raise ReceiverError(str(error)) from error
                logger.warning("%s; starting it again", error)
            except BaseException:
                self.close()
                raise

    def _spawn(self, port: int) -> None:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "spanbatch.testing._process",
                self.protocol,
                str(port),
                str(self.max_request_bytes or 0),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._commands = Connection(os.dup(self._process.stdin.fileno()), readable=False)
        self._replies = Connection(os.dup(self._process.stdout.fileno()), writable=False)
        self._process.stdin.close()
        self._process.stdout.close()

    def _first_reply(self, timeout: float) -> int:
        if not self._replies.poll(timeout):
            raise ReceiverError(f"the {self.protocol} receiver did not start within {timeout:g} s")
        try:
            status, value = self._replies.recv()
        except (EOFError, OSError) as error:
            try:
                code = self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                raise ReceiverError(f"the {self.protocol} receiver closed its replies while starting") from error
            message = f"the {self.protocol} receiver exited while starting (exit code {code})"
            raise _ExitedWhileStarting(message) from error
        if status != "ready":
            raise ReceiverError(f"the {self.protocol} receiver failed to start: {value}")
        return int(value)

    @property
    def pid(self) -> int:
        """The receiver process's id."""
        return self._process.pid

    @property
    def endpoint(self) -> str:
        """What the stock exporter's ``endpoint`` argument wants for this protocol."""
        if self.protocol == "http":
            return f"http://127.0.0.1:{self.port}/v1/traces"
        return f"127.0.0.1:{self.port}"

    @property
    def log_endpoint(self) -> str:
        """What the stock log exporter's ``endpoint`` argument wants for this protocol."""
        if self.protocol == "http":
            return f"http://127.0.0.1:{self.port}/v1/logs"
        return self.endpoint

    def log_exporter(self, **kwargs: Any) -> LogRecordExporter:
        """A stock OTLP log exporter for this receiver; ``kwargs`` go to its constructor."""
        if self.protocol == "http":
            from opentelemetry.exporter.otlp.proto.http._log_exporter import (  # noqa: PLC0415
                OTLPLogExporter as HTTPExporter,
            )

            return HTTPExporter(endpoint=self.log_endpoint, **kwargs)
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (  # noqa: PLC0415
            OTLPLogExporter as GRPCExporter,
        )

        return GRPCExporter(endpoint=self.log_endpoint, insecure=True, **kwargs)

    def span_exporter(self, **kwargs: Any) -> SpanExporter:
        """A stock OTLP span exporter for this receiver; ``kwargs`` go to its constructor."""
        # Imported here: each exporter package is optional, and only its own protocol needs it.
        if self.protocol == "http":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter as HTTPExporter,
            )

            return HTTPExporter(endpoint=self.endpoint, **kwargs)
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as GRPCExporter,
        )

        return GRPCExporter(endpoint=self.endpoint, insecure=True, **kwargs)

    def _call(self, command: str, **args: object) -> Any:
        with self._lock:
            self._next_id += 1
            request_id = self._next_id
            deadline = time.monotonic() + self._command_timeout
            try:
                self._commands.send((request_id, command, args))
                # Replies to earlier commands that timed out are still in the pipe: skip them.
                while self._replies.poll(max(0.0, deadline - time.monotonic())):
                    reply_id, ok, value = self._replies.recv()
                    if reply_id == request_id:
                        if not ok:
                            raise ReceiverError(f"receiver command {command!r} failed: {value}")
                        return value
            except (EOFError, OSError) as error:
                raise ReceiverError(f"the {self.protocol} receiver process is gone") from error
        raise ReceiverError(f"receiver command {command!r} got no answer within {self._command_timeout:g} s")

    def stats(self) -> ReceiverStats:
        result: ReceiverStats = self._call("stats")
        return result

    def span_ids(self) -> set[bytes]:
        """Distinct span ids received (8 bytes each)."""
        result: set[bytes] = self._call("span_ids")
        return result

    def span_names(self) -> dict[str, int]:
        """How many spans arrived under each name (duplicates included), in the order each name first arrived."""
        result: dict[str, int] = self._call("span_names")
        return result

    def log_bodies(self) -> dict[str, int]:
        """How many log records arrived with each string body (duplicates included)."""
        result: dict[str, int] = self._call("log_bodies")
        return result

    def reset(self) -> None:
        """Forgets everything received so far."""
        self._call("reset")

    def set_behaviour(
        self,
        mode: BehaviourName,
        *,
        status: int = 503,
        retry_after: float | None = None,
        times: int | None = None,
        after: int = 0,
    ) -> None:
        """How the receiver answers from now on.

        ``"ok"`` accepts; ``"status"`` answers ``status`` (HTTP code; mapped to the matching
        gRPC code) with an optional Retry-After in seconds; ``"hang"`` accepts the request and
        never answers until the behaviour changes (then closes it unanswered); ``"hold"`` answers it, and
        records it, only once the behaviour changes or the receiver closes (a slow backend; ``stats().held``
        counts those waiting, and drops just before the answer is recorded); ``"down"`` closes the port, and any other
        mode opens it again on the same port. ``times`` limits a fault to that many requests;
        ``after`` lets that many requests through first (a request cut in parts fails half-way).
        """
        if mode not in ("ok", "status", "hang", "hold", "down"):
            raise ValueError(f"unknown behaviour {mode!r}")
        self._call("set_behaviour", mode=mode, status=status, retry_after=retry_after, times=times, after=after)

    def wait_for(self, predicate: Callable[[ReceiverStats], bool], timeout: float = 10.0) -> bool:
        """Polls ``predicate(stats)`` until it is true; False if ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self.stats()):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_SECONDS)

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> bool:
        """True once at least ``count`` spans (duplicates included) arrived."""
        return self.wait_for(lambda s: s.spans >= count, timeout)

    def wait_for_log_records(self, count: int, timeout: float = 10.0) -> bool:
        """True once at least ``count`` log records (duplicates included) arrived."""
        return self.wait_for(lambda s: s.log_records >= count, timeout)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """True once at least ``count`` requests arrived, whatever the answer."""
        return self.wait_for(lambda s: s.requests >= count, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stops the receiver process; waits at most about ``timeout`` seconds, then kills it."""
        if self._process.poll() is None:
            try:
                with self._lock:
                    self._commands.send((0, "close", {}))
                    self._replies.poll(timeout)
            except (EOFError, OSError):
                pass
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("Receiver process %d did not stop; killing it.", self._process.pid)
                self._process.kill()
                self._process.wait(timeout)
        self._commands.close()
        self._replies.close()

    def __enter__(self) -> OTLPReceiver:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OTLPReceiver({self.protocol!r}, endpoint={self.endpoint!r}, pid={self._process.pid})"
