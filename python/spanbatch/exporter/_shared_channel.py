"""The gRPC channel that several export threads (``max_concurrent_exports``) of one exporter share.

The stock ``_export`` answers a first ``UNAVAILABLE`` by closing ``self._channel`` and making a new one, whatever
other threads have on it: closed, their calls in flight end ``CANCELLED`` though the backend may have them already
(so neither failing them nor sending them again is right: a loss or a batch twice), and a call about to start
raises ``ValueError``. Here ``self._channel`` is a ``SharedChannel``, whose ``close`` only retires it: each call in
flight on it ends as the backend answers it, the last one closes it, and a call not started yet goes to the channel
made in its place (it never left: not a resend).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import grpc

__all__ = ["Channels", "SharedChannel"]


class Channels:
    """One exporter's channels made in this process (a forked child makes its own) and not closed yet."""

    def __init__(self) -> None:
        # Guards every channel's count of calls and stub; notified when a stub is made (``SharedChannel.stub_made``).
        self.changed = threading.Condition()
        self._open: set[SharedChannel] = set()

    def make(self, channel: grpc.Channel) -> SharedChannel:
        shared = SharedChannel(channel, self)
        with self.changed:
            self._open.add(shared)
        return shared

    def close_all(self) -> None:
        """Closes every channel at once, the retired ones with calls in flight too: the stock shutdown's close, which
        ends the calls in flight (it only retired the current channel here). Wakes calls waiting for a channel."""
        with self.changed:
            closing, self._open = self._open, set()
            for channel in closing:
                channel.retired = True
            self.changed.notify_all()
        for channel in closing:
            channel.grpc.close()

    def forget(self, channel: SharedChannel) -> bool:
        """Whether ``channel`` was still open, for its caller to close (once: it is forgotten); under ``changed``."""
        was_open = channel in self._open
        self._open.discard(channel)
        return was_open


class SharedChannel:
    """What the stock exporter holds as ``self._channel``: a gRPC channel, with its calls in flight counted."""

    def __init__(self, channel: grpc.Channel, channels: Channels) -> None:
        self.grpc = channel
        self.pid = os.getpid()  # the process that made it: a forked child makes its own before its first call
        self.retired = False
        self.stub: object = None  # the exporter's stub on this channel, once made
        self._calls = 0
        self._channels = channels

    def __getattr__(self, name: str) -> Any:
        # The rest of ``grpc.Channel`` (``subscribe``, ``unary_unary``...) is the channel's own.
        return getattr(self.grpc, name)

    def begin_call(self) -> bool:
        """Counts a call about to start on this channel; False once it is retired (the call is the new one's)."""
        with self._channels.changed:
            if self.retired:
                return False
            self._calls += 1
            return True

    def stub_made(self, stub: object) -> None:
        """Wakes the calls waiting for a stub in place of a retired channel's."""
        with self._channels.changed:
            self.stub = stub
            self._channels.changed.notify_all()

    def end_call(self) -> None:
        with self._channels.changed:
            self._calls -= 1
            last = self._done_with()
        if last:
            self.grpc.close()

    def close(self) -> None:
        """The stock code's close (its reconnect's, its shutdown's): retires the channel, closed once idle."""
        if self.pid != os.getpid():  # inherited by a forked child, which has no call on it: closed as stock's
            self.grpc.close()
            return
        with self._channels.changed:
            self.retired = True
            idle = self._done_with()
        if idle:
            self.grpc.close()

    def _done_with(self) -> bool:
        """Under ``changed``: whether it is retired, has no call in flight and is still open, for the caller to close
        (once: it is forgotten)."""
        return self.retired and self._calls == 0 and self._channels.forget(self)
