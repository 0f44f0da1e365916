"""Process exit: every live lane is flushed and shut down within one deadline.

Daemon workers die mid-export when the interpreter finalises, so lanes are shut down from
atexit, before that, bounded by ``SPANBATCH_EXIT_TIMEOUT_MS`` (default 5000) however many
backends there are and whatever they do. The limit is one for the whole exit: the flushes and shutdowns that
non-daemon threads wait for once the main thread is done (the interpreter joins them before any atexit hook)
take their share of it first (``_exit_budget``). Each ``TracerProvider`` shuts its processors down
from its own atexit hook, in the order the hooks run, and a span ended in a hook that runs
before the provider's is exported, as with the stock processor. So exit keeps that order and
only bounds it: from the first atexit hook on, a processor's ``shutdown`` waits at most what is
left of the one exit deadline, counted from the first such shutdown. A last hook, registered
when spanbatch is imported and so run after the providers', flushes the lanes nobody shut down, in
parallel, shuts down those that did not drain by the deadline (what they hold is counted and told), then closes
the exit gate: as the interpreter finalizes, the lanes shut down by then call no Python from native code, and their
workers take the GIL back no more (``exit_gate.rs``). The lanes it flushed stay open, their workers and exporters
too, as the stock processor's do until their provider is shut down: hooks registered before spanbatch was imported
run after that one, and what they end is exported as usual, by the worker and by the owner's ``shutdown()`` there,
within what is left of the exit deadline.
A Ctrl-C that interrupts a shutdown at exit asks to stop waiting, as it does with the stock processor: the rest of
the exit waits for no export any more, and what the lanes still hold is counted and told at once.
``SPANBATCH_FLUSH_ON_SIGTERM=true`` flushes every lane on SIGTERM. An application's own handler is called at
once, the flush running beside it, so that a graceful drain is not held up by a hanging backend; under the
default action, which ends the process, every lane is shut down first, then the signal sent again acts as it would
have (blocked, it ends the process once unblocked; a handler the application set meanwhile gets it once). PID 1 of a
PID namespace, which the default action does not end, goes on as it would without spanbatch, its lanes flushed beside
it. A handler installed from C is left in place. SIGKILL and the OOM killer cannot be caught: they lose the spans
still queued, and nothing else.
A forked child is a process of its own: whatever its parent was doing (dying of SIGTERM, its exit deadline
running), the child's exit gets the whole limit, from its own first shutdown, and a SIGTERM sent to it flushes as
configured; processors its parent had shut down by then stay shut down in it (as stock's do), those it makes
work. Forked from an atexit hook (CPython 3.10, 3.11, 3.13+; 3.12 forks no child once exit has begun), it is
exiting too: it runs the hooks after that one, its main thread done; so is one forked by a greenlet meanwhile (under
gevent), whose OS thread's main greenlet goes on with those hooks. Forked by another thread meanwhile (a daemon
thread), it goes on with that thread's work: it is not exiting, and its spilling exporters replay and send with no
cut-off.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable
from types import FrameType

from spanbatch import _fork, _settings
from spanbatch._core import close_exit_gate, exit_gate_after_fork_in_child
from spanbatch._exit_budget import ExitBudget
from spanbatch._lane import (
    HasLanes,
    Lane,
    flush_lanes,
    flush_until,
    remaining_millis,
    shutdown_lanes,
    start_flushes,
    wait_for_drains,
    wait_for_shutdowns_under_way,
)
from spanbatch._logging_locks import holds_a_logging_lock
from spanbatch._setting import read
from spanbatch._threads import WorkerThread, os_thread_local, shared_rlock, start_thread

logger = logging.getLogger("spanbatch")


_owners: weakref.WeakSet[HasLanes] = weakref.WeakSet()
# SIGTERM's handling is decided: spanbatch's handler installed, or one installed from C left in place.
_sigterm_settled = False
# Whether a processor made off the main thread has told that the handler waits for one made on it.
_told_off_the_main_thread = False
# Set by the first atexit hook: the main and the non-daemon threads are done.
_exiting = False
# Marks the thread that runs the atexit hooks, from the first on: a child it forks runs the hooks after that one, and
# is exiting too; one another thread forks meanwhile goes on with that thread's work. Thread-local: the forking
# thread's values are the child's (an ident may change across a fork, and two threads may fork at once). Local to the
# OS thread, as gevent left it: its greenlets share the thread that runs the hooks, and in a child one of them forks,
# that thread's main greenlet goes on with the hooks.
_runs_the_exit_hooks = os_thread_local()
# When the exit deadline passes (monotonic); set by the first shutdown once exiting.
_exit_deadline: float | None = None
# What the waits of non-daemon threads have left of the exit limit, once the main thread is done.
_budget = ExitBudget()
# Set once spanbatch's last atexit hook has shut down or flushed every lane: hooks after it run on their own.
_past_last_hook = False
# Set once Ctrl-C (or any exception) tore through a shutdown at exit: the user asked to stop waiting, so the rest of
# the exit no longer waits for exports to drain (what they hold is counted and told at once, as after a deadline).
_exit_interrupted = False
# Told the exit deadline once the first shutdown at exit sets it (SIGTERM's, a forked child's own too): a spilling
# exporter's sends end short of it (``exporter._spilling``), not of a guess made before the application's own hooks ran.
_deadline_listeners: list[Callable[[float], None]] = []
# The thread shutting every lane down on SIGTERM, when the main thread could not wait for it (see on_sigterm).
_terminating: WorkerThread | None = None
# spanbatch's SIGTERM handler once installed, and whether it has made way for the default action (the process dies
# of the signal once every lane is shut down): a child forked meanwhile puts it back.
_sigterm_handler: Callable[[int, FrameType | None], None] | None = None
_sigterm_handler_set_aside = False
# Whether SIGTERM was sent again for the default action (``_die_of_sigterm``): once per process. Held across the
# send, so a thread that finds it under way waits for it (see ``_die_of_sigterm``).
_sigterm_sent_again = False
_sending_sigterm_again = _fork.PerProcess(shared_rlock)
# What stops a thread of spanbatch's exporters (a spill's replay) before the interpreter finalizes.
_stops_before_finalizing: list[Callable[[float], None]] = []
# Told in a forked child that is not exiting, whatever its parent was doing: a spilling exporter's exit is called off.
_child_lives_on_listeners: list[Callable[[], None]] = []


def when_deadline_set(listener: Callable[[float], None]) -> None:
    """``listener(deadline)`` (monotonic) each time a process sets its exit deadline."""
    _deadline_listeners.append(listener)


def when_forked_child_lives_on(listener: Callable[[], None]) -> None:
    """``listener()`` in each forked child that is not exiting (see ``_after_fork_in_child``)."""
    _child_lives_on_listeners.append(listener)


def register(owner: HasLanes) -> None:
    """Include ``owner``'s lanes in the exit flush."""
    global _sigterm_settled
    _owners.add(owner)
    if not _sigterm_settled and read(_settings.FLUSH_ON_SIGTERM):
        _sigterm_settled = _install_sigterm_handler()


def _lanes() -> list[Lane]:
    """This process's lanes of every registered processor and pipeline."""
    return _fork.of_this_process(lane for owner in list(_owners) for lane in owner.lanes)


def lane_exporters() -> list[object]:
    """The exporters of this process's lanes: spanbatch's shutdowns of them keep to the exit deadline."""
    return [lane.exporter for lane in _lanes()]


def before_finalizing(stop: Callable[[float], None]) -> None:
    """Has the last hook call ``stop`` with what is left of the exit deadline (0 once a Ctrl-C asked to stop waiting)
    before the interpreter finalizes: the exporters whose lanes it leaves open are not shut down, and a thread of
    their own would run on, cut off mid-work, through finalization."""
    _stops_before_finalizing.append(stop)


def _exit_begins() -> None:
    global _exiting
    _exiting = True
    _runs_the_exit_hooks.here = True
    # Every lane sends what it holds now, in parallel. The providers' hooks then shut their processors down one after
    # the other within the one deadline, and one waiting on a hung backend would leave those after it no time.
    start_flushes(_lanes())


def _on_main_thread_done() -> None:
    # Non-daemon threads are joined after this and before atexit: a hook registered now runs
    # first of the atexit hooks, once no application thread is left to shut a processor down.
    _budget.main_thread_done()
    atexit.register(_exit_begins)


def _after_fork_in_child() -> None:
    """The child's exit is its own: it gets the whole limit whatever was left of its parent's (a pre-fork server or
    a pool may fork while its SIGTERM's shutdown runs), and SIGTERM flushes it as configured."""
    global _budget, _terminating, _exit_deadline, _exit_interrupted, _exiting, _past_last_hook, _sigterm_sent_again
    _budget = ExitBudget()  # the child's own main thread (the one that forked) is running
    if _exiting and getattr(_runs_the_exit_hooks, "here", False):
        # Forked by an atexit hook: the child runs the hooks after it, its main thread done. It stays exiting (its
        # shutdowns keep an exit deadline; no hook would tell it again), and its flushes share its exit limit too.
        _budget.main_thread_done()
    else:
        # Forked by another thread (a daemon thread while its parent ran the hooks, say): the child goes on with
        # that thread's work, a live process until it exits in its turn.
        _exiting = False
        _past_last_hook = False
        for listener in _child_lives_on_listeners:
            listener()
    _exit_deadline = None  # set by the child's own first shutdown once exiting
    _exit_interrupted = False  # a Ctrl-C its parent's exit met is not the child's
    _terminating = None
    _sigterm_sent_again = False  # the parent's; a SIGTERM sent to the child ends it in its turn
    exit_gate_after_fork_in_child()
    _restore_sigterm_handler()  # last: setting a handler may raise (a fork on a subinterpreter's thread)


def exit_deadline_now() -> float | None:
    """The monotonic time by which a wait begun now ends to keep the exit limit; None while the main thread runs."""
    if _exit_deadline is not None:
        return _exit_deadline
    left = _budget.seconds_left(_exit_limit_seconds)
    return None if left is None else time.monotonic() + left


def _within_exit_limit(deadline: float) -> float:
    """A flush's or shutdown's own deadline, and once the main thread is done at most what is left of the exit limit.
    The interpreter joins a non-daemon thread that flushes or shuts down (the SDK's ``LoggingHandler.flush`` starts
    one, with the provider's 30 s default; a server's cleanup thread) before it runs any atexit hook."""
    exit_deadline = exit_deadline_now()
    return deadline if exit_deadline is None else min(deadline, exit_deadline)


def flush(lanes: list[Lane], timeout_millis: float) -> dict[str, bool]:
    """A processor's ``force_flush`` of its lanes; once the main thread is done, within what is left of the exit
    limit, which it takes its share of."""
    with _budget.holding_exit():
        return flush_lanes(lanes, timeout_millis, _within_exit_limit)


def past_last_hook() -> bool:
    """Whether spanbatch's last atexit hook has run: nothing of spanbatch's runs after it to tell of drops."""
    return _past_last_hook


def exit_timeout_millis() -> float:
    return read(_settings.EXIT_TIMEOUT)


def _exit_limit_seconds() -> float:
    return exit_timeout_millis() / 1000


def _millis_left_to_exit() -> float:
    """What is left of the exit deadline, which starts with the first shutdown that asks."""
    global _exit_deadline
    if _exit_deadline is None:
        left = _budget.seconds_left(_exit_limit_seconds)
        _exit_deadline = time.monotonic() + (exit_timeout_millis() / 1000 if left is None else left)
        for listener in _deadline_listeners:
            listener(_exit_deadline)
    return remaining_millis(_exit_deadline)


def _shutdown_minding_ctrl_c(lanes: list[Lane], timeout_millis: float) -> None:
    """Shut ``lanes`` down at exit, draining their exports unless a Ctrl-C (or any exception) tore through such a
    shutdown before; one tearing through this one asks the rest of the exit to stop waiting. Past the last hook, no
    later one would finish what it interrupted: it is finished at once, unwaited (what is held counted and told)."""
    global _exit_interrupted
    try:
        shutdown_lanes(lanes, timeout_millis, drain=not _exit_interrupted)
    except BaseException:
        _exit_interrupted = True
        if _past_last_hook:
            shutdown_lanes(lanes, 0.0, drain=False)
        raise


def shutdown_all(timeout_millis: float | None = None, *, leave_to_owners: bool = False) -> None:
    """Shut down every registered lane in parallel: by default within what is left of the exit
    deadline, or the lanes' longest ``drain_timeout_millis`` if shorter (no longer than the
    providers' own shutdown of those processors would have taken).

    ``leave_to_owners`` (the last atexit hook): a lane nobody shut down is flushed instead, and stays open to what
    the atexit hooks after this one end, for its worker to export and its owner to shut down; one that did not drain
    by the deadline is shut down (what it holds is counted and told). Interrupted, every lane is shut down unwaited.
    """
    lanes = _lanes()
    if timeout_millis is None:
        longest_drain = max((lane.settings.drain_timeout_millis for lane in lanes), default=0.0)
        timeout_millis = min(_millis_left_to_exit(), longest_drain)
    deadline = time.monotonic() + timeout_millis / 1000
    # Interrupted here (the last hook's shutdown), a provider made before spanbatch was imported shuts its lanes down
    # after it, without waiting.
    left_open = _flushed(lanes, deadline) if leave_to_owners and not _exit_interrupted else []
    _shutdown_minding_ctrl_c([lane for lane in lanes if lane not in left_open], remaining_millis(deadline))
    if not _exit_interrupted:  # a Ctrl-C asked the exit to wait for nothing more
        wait_for_shutdowns_under_way(lanes, deadline)
    wait_for_drains(lanes, remaining_millis(deadline))
    # Drops the rate limit left unsaid (items handed to a processor shut down before exit): told now or never.
    for lane in lanes:
        lane.tell_drops(deadline)


def _flushed(lanes: list[Lane], deadline: float) -> list[Lane]:
    """The running lanes that drained by ``deadline``, flushed in parallel. A Ctrl-C in the wait asks the rest of the
    exit to stop waiting: none is left open then."""
    global _exit_interrupted
    try:
        return flush_until(lanes, deadline)
    except BaseException:
        _exit_interrupted = True
        _shutdown_minding_ctrl_c(lanes, 0.0)
        raise


def flush_all() -> None:
    """Flush every registered lane in parallel within the exit timeout (or the lanes' longest
    ``drain_timeout_millis``, if shorter); the lanes keep running, and the exit deadline is not started."""
    lanes = _lanes()
    longest_drain = max((lane.settings.drain_timeout_millis for lane in lanes), default=0.0)
    flush_lanes(lanes, min(exit_timeout_millis(), longest_drain))


def shutdown(lanes: list[Lane], timeout_millis: float) -> None:
    """A processor's ``shutdown`` of its lanes; once the main thread is done, within what is left of the exit
    limit (once exiting, of the exit deadline)."""
    if _exiting:
        _shutdown_minding_ctrl_c(lanes, min(timeout_millis, _millis_left_to_exit()))
        return
    with _budget.holding_exit():
        shutdown_lanes(lanes, timeout_millis, bound=_within_exit_limit)


def _last_hook() -> None:
    """Flushes the lanes nobody shut down, leaving those that drained to the atexit hooks after this one (see
    ``shutdown_all``), then closes the exit gate (see ``exit_gate.rs``): once the interpreter finalizes, a thread
    that takes the GIL back inside native code would be unwound through it."""
    global _past_last_hook
    try:
        if _terminating is not None:  # SIGTERM's shutdown, begun off the main thread: it ends the process
            _terminating.join(_millis_left_to_exit() / 1000)
        # SIGTERM's ends the process once this hook returns: no hook after it will shut a lane down.
        shutdown_all(leave_to_owners=_terminating is None)
        for stop in _stops_before_finalizing:
            stop(0.0 if _exit_interrupted else _millis_left_to_exit())
    finally:
        _past_last_hook = True
        close_exit_gate()
        if _terminating is not None:
            # Its thread may be parked at the gate now, short of its kill: the process ends by the signal all the
            # same, never as a clean exit (SIGTERM's handler is the default one since it came), unless it was sent.
            _die_of_sigterm()


# Registered once, at import: it runs after the atexit hooks of providers built later.
atexit.register(_last_hook)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
# Private, present on CPython 3.9+; without it exit is bounded by that last hook alone.
if (_register_at_main_thread_done := getattr(threading, "_register_atexit", None)) is not None:
    _register_at_main_thread_done(_on_main_thread_done)


def _install_sigterm_handler() -> bool:
    """Whether SIGTERM's handling is settled: installed, or left to a handler from C (told once). False: try again
    from the main thread."""
    global _sigterm_handler
    global _told_off_the_main_thread
    if threading.current_thread() is not threading.main_thread():
        if not _told_off_the_main_thread:  # each processor made there would say it again
            _told_off_the_main_thread = True
            logger.warning(
                "SPANBATCH_FLUSH_ON_SIGTERM: only the main thread can install a signal handler; SIGTERM flushes once a"
                " processor is made on the main thread."
            )
        return False
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None:
        # Installed from C (an embedding server's): Python can neither call it nor put it back once replaced.
        logger.warning(
            "SPANBATCH_FLUSH_ON_SIGTERM: SIGTERM has a handler installed outside Python, which spanbatch could not"
            " call; it is left in place and SIGTERM does not flush."
        )
        return True

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        # Called while another handler is installed: one set after this one calls it as "the previous handler",
        # then goes on with its own exit, which the default action must not cut short (without spanbatch the
        # previous handler would have been SIG_DFL, which no handler can call).
        chained_to = signal.getsignal(signal.SIGTERM) is not on_sigterm
        # PID 1 of a PID namespace (a container's main process run without an init): the kernel ignores the default
        # action there, so without spanbatch the signal would have done nothing.
        spared = previous == signal.SIG_DFL and os.getpid() == 1
        if callable(previous) or previous == signal.SIG_IGN or chained_to or spared:
            # The application handles SIGTERM (a server's graceful drain) or goes on regardless: it goes on at once,
            # and goes on ending spans, which lanes shut down now would drop. What is queued leaves beside it; exit
            # shuts down as usual.
            _flush_beside_the_application()
            if callable(previous):
                previous(signum, frame)
        elif holds_a_logging_lock():
            # Interrupted inside logging: an exporter logging through the same handler would wait for this thread
            # while it waited for the exporter. The main thread goes on (and lets go of the lock) meanwhile.
            _terminate_beside_the_application()
        else:
            _terminate()

    signal.signal(signal.SIGTERM, on_sigterm)
    _sigterm_handler = on_sigterm
    return True


def _set_aside_sigterm_handler() -> None:
    """The default action of SIGTERM back, for the process to die of the signal."""
    global _sigterm_handler_set_aside
    # Told first: a thread may fork in between, and its child puts the handler back if it was set aside by then.
    _sigterm_handler_set_aside = True
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _restore_sigterm_handler() -> None:
    """In a forked child: spanbatch's handler back (with the application's before it, as it was called) if it made
    way for the default action in the parent, unless something else has taken its place since. The thread that
    forked is the child's main thread: the handler may be set from it."""
    global _sigterm_handler_set_aside
    if not _sigterm_handler_set_aside:
        return
    _sigterm_handler_set_aside = False
    if _sigterm_handler is not None and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_handler)


def _terminate() -> None:
    """The default action of SIGTERM, as if we had not been here, once every lane is shut down. A Ctrl-C in the
    shutdown's waits ends them, not the signal's effect: the process still dies of the SIGTERM that came first."""
    try:
        shutdown_all()
    finally:
        _set_aside_sigterm_handler()
        _die_of_sigterm()


def _die_of_sigterm_after_shutdown() -> None:
    try:
        shutdown_all()
    finally:
        _die_of_sigterm()  # its handler is the default one already


def _die_of_sigterm() -> None:
    """SIGTERM again, under its default action, to act as it would have without spanbatch: the process dies of it,
    or, blocked where it could land (a critical section), once it is unblocked. Once per process: a handler the
    application set meanwhile gets it once, as it would have got the first."""
    global _sigterm_sent_again
    # Held until it is sent: the last atexit hook, finding the shutdown thread about to send it, would otherwise go on
    # and the process exit cleanly. Reentrant and marked first: a handler the signal runs on this thread may get here.
    with _sending_sigterm_again.get():
        if _sigterm_sent_again:
            return
        _sigterm_sent_again = True
        os.kill(os.getpid(), signal.SIGTERM)


def _flush_beside_the_application() -> None:
    # No new threads once interpreter shutdown has begun (3.12+): the exit shutdown sends what is queued then.
    with contextlib.suppress(RuntimeError):
        start_thread(flush_all, "spanbatch-sigterm-flush")


def _terminate_beside_the_application() -> None:
    """``_terminate`` on a thread of its own. Only the main thread sets a handler: the default one is back from
    now on, so a second SIGTERM ends the process at once, as it would have without spanbatch."""
    global _terminating
    _set_aside_sigterm_handler()
    try:
        _terminating = start_thread(_die_of_sigterm_after_shutdown, "spanbatch-sigterm-shutdown")
    except RuntimeError:  # no new threads once interpreter shutdown has begun (3.12+)
        _die_of_sigterm_after_shutdown()
