"""spanbatch sends SIGTERM again, once, for the process to die of it as it would have without spanbatch. Two threads
may get there together (the thread shutting the lanes down on SIGTERM, and the last atexit hook whose wait for it
ran out): the one that finds the signal under way must not go on, and let the process exit cleanly, before it is
sent."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from spanbatch import _exit


def test_a_thread_that_finds_the_signal_being_sent_returns_only_once_it_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sending = threading.Event()
    let_it_land = threading.Event()
    sent: list[int] = []

    def kill(pid: int, sig: int) -> None:
        assert pid == os.getpid()
        sending.set()
        let_it_land.wait(10)  # the sending thread lost the processor here
        sent.append(sig)

    monkeypatch.setattr(os, "kill", kill)
    monkeypatch.setattr(_exit, "_sigterm_sent_again", False)
    first = threading.Thread(target=_exit._die_of_sigterm)
    first.start()
    assert sending.wait(10)
    second = threading.Thread(target=_exit._die_of_sigterm)
    second.start()
    second.join(0.5)
    try:
        assert second.is_alive(), "went on before the signal was sent"
    finally:
        let_it_land.set()
        first.join(10)
        second.join(10)
    assert sent == [signal.SIGTERM]  # once per process


def test_the_signal_is_sent_once_however_many_threads_get_there(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[int] = []
    monkeypatch.setattr(os, "kill", lambda _pid, sig: sent.append(sig))
    monkeypatch.setattr(_exit, "_sigterm_sent_again", False)
    threads = [threading.Thread(target=_exit._die_of_sigterm) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sent == [signal.SIGTERM]
