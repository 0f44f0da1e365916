"""Log lines that cannot stop spanbatch's work when a user's logging raises.

``logging`` tells of a handler whose ``emit`` raised on stderr and goes on (``Handler.handleError``), but
lets an exception from a filter (on a logger or a handler) or from a custom ``handle`` reach the caller.
Reaching a lane's worker, it would end it: the batch it was settling left in flight, every later item
queued for ever, each flush waiting out its timeout. So the worker's lines go through ``logged``: the
line is lost, the work goes on, and the failure is told once per process on stderr with its traceback,
as ``handleError`` tells of a handler's, and only where ``logging.raiseExceptions`` asks for it (its
default; production code that turns it off wants logging's own failures kept quiet). Once, not per
line: a filter that raises raises for every line, and a worker that logs per batch would flood stderr.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import traceback
from collections.abc import Callable

from spanbatch._own_lines import own_lines

# Counted without a lock: a signal's handler whose line raises too may come here again on the thread being here
# already, which would wait for itself on a lock; and a child forked while another thread held one would wait for ever.
_notices = itertools.count()  # ``next`` is one C call: no two callers get 0


def logged(log: Callable[..., object], *args: object, **kwargs: object) -> None:
    """``log(*args, **kwargs)``, whatever it raises: see the module's comment. The line is spanbatch's own: a log
    lane it comes back to drops it without news (``_own_lines``).

    Off the main thread any exception is absorbed (a ``SystemExit`` from a filter would end the thread);
    on it, only ``Exception``: a ``KeyboardInterrupt`` there is the user's Ctrl-C.
    """
    try:
        with own_lines():
            log(*args, **kwargs)
    except Exception:
        _notice(args)
    except BaseException:
        if threading.current_thread() is threading.main_thread():
            raise
        _notice(args)


def _notice(args: tuple[object, ...]) -> None:
    """Tells of the exception being handled, once per process; called in its ``except`` block."""
    if next(_notices):
        return
    stream = sys.stderr
    if not logging.raiseExceptions or stream is None:
        return
    try:
        stream.write("--- spanbatch: a logging call raised; the line is lost, spanbatch goes on (told once) ---\n")
        traceback.print_exc(file=stream)
        stream.write(f"Arguments: {args!r}\n")
        stream.flush()
    except Exception:  # stderr closed (at exit): nowhere left to tell it
        pass
