"""The receiver process: serves OTLP on 127.0.0.1 and answers commands read from stdin.

Run as ``python -m spanbatch.testing._process {http|grpc} [PORT [MAX_REQUEST_BYTES]]`` (0: no limit of
ours). Commands and replies are pickled ``multiprocessing.connection`` messages over stdin/stdout, so the process ends
by itself when its parent dies (stdin reaches EOF) and never re-imports the parent's
``__main__`` the way a spawned ``multiprocessing.Process`` would.
"""

from __future__ import annotations

import logging
import os
import sys
from multiprocessing.connection import Connection
from typing import Protocol

from spanbatch.testing._store import Fault, FaultPlan, SpanStore

logger = logging.getLogger(__name__)


class Endpoint(Protocol):
    port: int

    def stop(self) -> None: ...


def start_endpoint(protocol: str, port: int, store: SpanStore, faults: FaultPlan, max_bytes: int = 0) -> Endpoint:
    # Imported here so each protocol pulls in only its own dependencies.
    if protocol == "http":
        from spanbatch.testing._http import HTTPEndpoint  # noqa: PLC0415

        return HTTPEndpoint(port, store, faults, max_bytes)
    if protocol == "grpc":
        from spanbatch.testing._grpc import GRPCEndpoint  # noqa: PLC0415

        return GRPCEndpoint(port, store, faults, max_bytes)
    raise ValueError(f"protocol must be 'http' or 'grpc', not {protocol!r}")


class Receiver:
    """The process's state: the store, the fault plan, and the endpoint while it listens."""

    def __init__(self, protocol: str, port: int, max_bytes: int = 0) -> None:
        self.protocol = protocol
        self.max_bytes = max_bytes
        self.store = SpanStore()
        self.faults = FaultPlan()
        self.endpoint: Endpoint | None = start_endpoint(protocol, port, self.store, self.faults, max_bytes)
        self.port = self.endpoint.port

    def set_behaviour(
        self, mode: str, status: int, retry_after: float | None, times: int | None, after: int = 0
    ) -> None:
        if mode == "down":
            if self.endpoint is not None:
                self.endpoint.stop()
                self.endpoint = None
            return
        self.faults.set(Fault(mode, status, retry_after), times, after)
        if self.endpoint is None:
            self.endpoint = start_endpoint(self.protocol, self.port, self.store, self.faults, self.max_bytes)

    def handle(self, command: str, args: dict[str, object]) -> object:
        if command == "stats":
            return self.store.stats()
        if command == "span_ids":
            return self.store.span_ids()
        if command == "span_names":
            return self.store.span_names()
        if command == "log_bodies":
            return self.store.log_bodies()
        if command == "reset":
            self.store.reset()
            return None
        if command == "set_behaviour":
            self.set_behaviour(**args)  # type: ignore[arg-type]
            return None
        raise ValueError(f"unknown command {command!r}")

    def stop(self) -> None:
        if self.endpoint is not None:
            self.endpoint.stop()
            self.endpoint = None


def main(protocol: str, port: int, max_bytes: int = 0) -> None:
    commands = Connection(os.dup(0), writable=False)
    replies = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # stray prints must not corrupt the reply channel
    try:
        receiver = Receiver(protocol, port, max_bytes)
    except Exception as error:
        replies.send(("error", repr(error)))
        return
    replies.send(("ready", receiver.port))
    try:
        while True:
            try:
                request_id, command, args = commands.recv()
            except (EOFError, OSError):
                return  # the parent is gone
            if command == "close":
                receiver.stop()
                replies.send((request_id, True, None))
                return
            try:
                replies.send((request_id, True, receiver.handle(command, args)))
            except Exception as error:
                logger.exception("Receiver command %s failed", command)
                replies.send((request_id, False, repr(error)))
    finally:
        receiver.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        main(sys.argv[1], *(int(arg) for arg in sys.argv[2:4]))
    except BaseException:
        logger.exception("Receiver process failed")
    finally:
        # Server threads (gRPC's pool in particular) must not keep a parentless process alive.
        os._exit(0)
