"""A plain-HTTP transport for the stock OTLP/HTTP client that sends from Rust, without the GIL.

``requests`` re-takes the GIL after each blocking socket call, and behind a busy
application thread each re-take can wait a whole switch interval (5 ms): the export
worker falls behind and spans are dropped. Sent from Rust, a request costs one re-take,
and ``send_all`` sends several batches' requests for one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from opentelemetry.exporter.http.transport._base import BaseHTTPResult, BaseHTTPTransport
from opentelemetry.exporter.otlp.proto.http._common import RequestPayloadTooLargeError
from requests.structures import CaseInsensitiveDict

from spanbatch._core import (
    AnswerUnreadableError,
    HttpOutcome,
    HttpSender,
    LogRequest,
    NotSentError,
    RequestTooLargeError,
    SendProgress,
    SpanRequest,
    TransportConnectionError,
    TransportError,
)
from spanbatch._threads import on_own_os_thread, start_thread, threads_are_greenlets

__all__ = ["NativeHTTPResult", "NativeHTTPTransport", "NotSentError", "TransportConnectionError"]

T = TypeVar("T")


class ForkedDuringSendError(TransportError):
    """A child forked (by a signal handler) while its thread waited for a send: the send and its answer are the
    parent's, and the thread making it is not in the child."""


# Failures of a send whose request may be at the backend all the same: an answer that could not be read (the server
# had read the request), a send a forked child stopped waiting for (its parent's goes on).
_MAY_HAVE_ARRIVED = (AnswerUnreadableError, ForkedDuringSendError)


def may_have_arrived(error: BaseException | None) -> bool:
    """Whether a send that failed with ``error`` may have delivered its request: sent again (from a spill, or its
    replay), the backend could get it twice."""
    return isinstance(error, _MAY_HAVE_ARRIVED)


def _off_this_thread(send: Callable[[], T]) -> T:
    """``send()``, on a thread of its own while the caller waits, where a Rust send, which blocks its OS thread
    detached from the interpreter, would hold up more than the caller:
    - the main thread, which alone runs signal handlers: Ctrl-C raises ``KeyboardInterrupt`` at once, as in
      ``requests``, not once the send returns (up to the whole timeout);
    - under gevent, a greenlet (a stock processor's worker, or ``SimpleSpanProcessor`` in the application's
      greenlet): its OS thread is the hub's and every other greenlet's, which ``requests``'s patched socket lets
      run while it waits; the caller pauses cooperatively instead (``WorkerThread.join``).
    spanbatch's own export threads are neither (real OS threads under gevent): batch processors pay nothing. An
    interrupted send finishes on its thread, within its own timeout, and its outcome is dropped. A child forked by
    a signal handler run in the wait gets ``ForkedDuringSendError`` at once, where it would wait for ever."""
    if threads_are_greenlets():
        if on_own_os_thread():
            return send()
    elif threading.current_thread() is not threading.main_thread():
        return send()
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(send())
        except BaseException as error:  # handed to the waiting thread
            failure.append(error)

    try:
        sending = start_thread(run, "spanbatch-http-send")
    except RuntimeError:  # exit has begun (CPython 3.12 starts no thread then): send here, as before
        return send()
    sending.join()  # a wait that runs signal handlers (and lets greenlets run): what they raise ends it, as a fork does
    if not sending.of_this_process():
        raise ForkedDuringSendError("forked while waiting for a send: the parent's to finish")
    if failure:
        raise failure[0]
    return outcome[0]


@dataclass(frozen=True, slots=True)
class NativeHTTPResult(BaseHTTPResult):
    response_headers: Mapping[str, str] = field(default_factory=dict, compare=False)
    body: bytes = b""
    # How long the attempt took: retries after it keep to its export's one deadline.
    seconds: float = field(default=0.0, compare=False)

    def content(self) -> bytes:
        return self.body

    def headers(self) -> Mapping[str, str]:
        return self.response_headers


def result_of(outcome: HttpOutcome) -> NativeHTTPResult:
    """The result for one ``HttpSender`` outcome."""
    error: Exception | None = outcome.error()
    if error is None:
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
        for name, value in outcome.headers:  # repeated headers join with ", ", as requests joins them
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return NativeHTTPResult(
            status_code=outcome.status,
            reason=outcome.reason,
            response_headers=headers,
            body=outcome.body,
            seconds=outcome.seconds,
        )
    if isinstance(error, RequestTooLargeError):
        error = RequestPayloadTooLargeError(*error.args)  # the stock client's own type, which its callers check
    return NativeHTTPResult(error=error, seconds=outcome.seconds)


class NativeHTTPTransport(BaseHTTPTransport):
    """``BaseHTTPTransport`` over spanbatch's Rust ``HttpSender``: plain ``http://`` only, no session."""

    def __init__(self) -> None:
        self._sender = HttpSender()
        self._replays = threading.local()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        data: bytes | None = None,
    ) -> BaseHTTPResult:
        replay: NativeHTTPResult | None = getattr(self._replays, "result", None)
        if replay is not None:
            self._replays.result = None
            return replay
        pairs = list((headers or {}).items())
        return self._results_of(lambda: [self._sender.send(method, url, pairs, data or b"", timeout)], 1)[0]

    @contextmanager
    def replaying(self, result: NativeHTTPResult) -> Iterator[None]:
        """The calling thread's next ``request`` returns ``result`` instead of sending.

        So the stock client can carry on, with its own retries and logging, after an
        attempt ``send_all`` already made.
        """
        self._replays.result = result
        try:
            yield
        finally:
            self._replays.result = None

    def send_all(
        self,
        url: str,
        headers: Mapping[str, str],
        requests: Sequence[SpanRequest | LogRequest],
        *,
        encoding: str,
        max_request_size: int,
        timeout: float | None,
        progress: SendProgress | None = None,
    ) -> list[NativeHTTPResult]:
        """POST each request in turn, serialized and compressed in Rust, in one stretch without the GIL; ``progress``
        is marked as each ends.

        After one fails to reach the server the rest are not sent (``NotSentError``); nor is a part of a request
        past its deadline, ``timeout`` from the start of that request's first part.
        """
        pairs = list(headers.items())
        return self._results_of(
            lambda: self._sender.send_all(url, pairs, list(requests), encoding, max_request_size, timeout, progress),
            len(requests),
        )

    @staticmethod
    def _results_of(send: Callable[[], list[HttpOutcome]], sends: int) -> list[NativeHTTPResult]:
        """The results of the ``sends`` outcomes ``send()`` returns, made off this thread where it must be (see
        ``_off_this_thread``); in a child forked meanwhile, failures: those sends are the parent's."""
        try:
            outcomes = _off_this_thread(send)
        except ForkedDuringSendError as error:
            return [NativeHTTPResult(error=error) for _ in range(sends)]
        return [result_of(outcome) for outcome in outcomes]

    def end_sends_by(self, at: float | None) -> None:
        """Sends end by ``at`` (monotonic) at the latest, those under way too (see ``_cutoff``); None: no cut-off."""
        self._sender.end_sends_after(None if at is None else at - time.monotonic())

    def is_connection_error(self, exception: Exception | None) -> bool:
        return isinstance(exception, TransportConnectionError)

    def close(self) -> None:
        self._sender.close()
