"""An exporter's disk spill: requests that fail after the retries go to disk, and come back when the backend does.

The exporter hands over the bytes of a request as it was sent with its item count (``spill``; the
request's part knows it), says how to send one stored request once (``send_once``), and notes for
spanbatch's export loop the items each batch had spilled (``spills_of``).
While a request is known to have failed, or once the cut-off set at exit has passed (``_cutoff``), later ones go
straight to disk behind it; a replay thread, never the application's, probes the backend with the oldest file, and
once one is delivered sends the rest and lets requests through again.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MethodType

from spanbatch import _exit, _settings
from spanbatch._core import SharedLock
from spanbatch._encoding import note_spilled
from spanbatch._fork import PerProcess
from spanbatch._lane import weak_method
from spanbatch._setting import checked_argument, read
from spanbatch._spill import Sent, SpillCounts, SpillStore
from spanbatch._threads import Wakeup, WorkerThread, shared_rlock, start_thread
from spanbatch.exporter._cutoff import Cutoff
from spanbatch.exporter._spill_identity import Identity

logger = logging.getLogger("spanbatch")

# Pause between probes of a backend that is still down: doubled after each failed probe up to the longest.
FIRST_PROBE_SECONDS = 0.5
LONGEST_PROBE_SECONDS = 30.0
# How often an exporter whose spiller has nothing of its own to replay looks for files another process left in its
# directory (one killed during an outage): a directory scan per this many seconds of exports, at most.
LEFT_FILES_LOOK_SECONDS = 30.0
# Longest an exporter's shutdown waits for a replay already sending (less if its own timeout is shorter):
# a request's own timeout bounds it in practice; past this the thread is left to finish (a daemon), and
# may still deliver that one file.
STOP_WAIT_SECONDS = 5.0
# At exit, what a spilling exporter's sends leave of the exit deadline for writing the request cut short and the
# queue behind it to disk: this share of the time left, at most the longest. Measured on a shared 2-CPU machine: the
# request cut short and three more of 512 small spans were on disk, and the exit over, 10-25 ms after the cut-off;
# large spans are written at 60-70 MB/s (README, Cost): a full default queue of them in well under the second.
DISK_SHARE = 0.2
LONGEST_DISK_SECONDS = 1.0


def spill_directory(spill_dir: str | os.PathLike[str] | None) -> Path | None:
    """The directory the argument or ``SPANBATCH_SPILL_DIR`` names; None: no spill (the default)."""
    if spill_dir is not None:
        return Path(spill_dir)
    configured = read(_settings.SPILL_DIR)
    return None if configured is None else Path(configured)


Headers = Mapping[str, object] | Iterable[tuple[str, object]]
# Headers that say which client sent a request, not whose it is: a new release must find its directory.
_CLIENT_HEADERS = frozenset({"user-agent", "content-type"})


def backend_directory(
    root: Path,
    protocol: str,
    endpoint: str,
    headers: Headers = (),
    compression: str = "none",
    *,
    keyed: Mapping[str, object] | None = None,
) -> Path:
    """One subdirectory per backend and per what its requests carry (headers: a tenant's key; compression; ``keyed``:
    whatever else says who they are sent as, see ``_spill_identity``), so that a shared directory never replays a
    request to another backend, nor as another tenant."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    # Text as it is (the names given so far); anything else, such as gRPC's binary metadata (bytes), by its repr.
    kept = sorted(
        (name.lower(), value if isinstance(value, str) else repr(value))
        for name, value in pairs
        if name.lower() not in _CLIENT_HEADERS
    )
    identity = f"{protocol} {endpoint}"
    if keyed:  # the names of releases before this one for exporters with nothing more to key (below)
        identity += "\n" + json.dumps([compression, kept, keyed], sort_keys=True, default=repr)
    elif kept or compression != "none":  # without either, the name spanbatch gave before it keyed them
        identity += "\n" + json.dumps([compression, kept])
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return root / f"{protocol}-{digest}"


class Spiller:
    """One exporter's spill: its store, whether its backend is known to be down, and its replay thread."""

    def __init__(
        self,
        store: SpillStore,
        send_once: Callable[[bytes], Sent],
        cutoff: Cutoff | None = None,
    ) -> None:
        self.store = store
        self._cutoff = cutoff
        self._down = False
        self._next_look = time.monotonic() + LEFT_FILES_LOOK_SECONDS  # the first look is the one at construction
        # Shared with the replay thread, a real OS thread even under gevent: real primitives (see ``_threads``).
        # Reentrant: a garbage collection under it may free another exporter, whose spiller hands its files to this one.
        self._locks = PerProcess(shared_rlock)
        self._stopping = Wakeup()  # ends the replay's pause between probes
        self._shut_down = False  # its exporter was shut down or freed: it replays no more
        # spanbatch's last atexit hook ended its replays (the exporter left open): a forked child that lives on, whose
        # parent was exiting, replays again.
        self._stopped_for_exit = False
        self._exiting = False  # no replay starts once the process exits: the next process replays
        self._send_once = self._weakly(send_once)
        self._replaying = False  # a replay thread is being started or runs (in process ``_pid``)
        self._thread: WorkerThread | None = None  # the last one started, for ``stop`` to wait for
        self._pid = os.getpid()  # the process ``_thread`` runs in
        # Per thread: the items of the request it is sending (``sending``), the items it spilled so far.
        self._here = threading.local()
        with _live_lock.get():
            _live_spillers.add(self)
        if store.pending():  # left by an earlier process: deliver them
            self._ensure_replaying()
        if cutoff is not None:
            _at_exit(self)

    def __repr__(self) -> str:
        return f"Spiller({self.store!r}, down={self._down})"

    def _weakly(self, send_once: Callable[[bytes], Sent]) -> Callable[[bytes], Sent | None]:
        """``send_once`` without keeping its exporter alive, and replays stopped once that exporter is freed.

        The exporter holds its spiller and the replay thread holds the spiller: a strong reference back
        would keep an exporter dropped without a shutdown (its connections, its channel) in a cycle only
        the cyclic GC frees, or for as long as its backend stays down, its replay thread probing it.
        """
        if not isinstance(send_once, MethodType):
            return send_once
        weakref.finalize(send_once.__self__, self._exporter_freed).atexit = False
        return weak_method(send_once)

    def _exporter_freed(self) -> None:
        """Its exporter was freed without a shutdown: no replay is its to make, and what it spilled is handed to
        a live spiller of the same directory, if any (no wait: this runs wherever the exporter was freed)."""
        with self._lock:
            self._shut_down = True
        self._stopping.wake()
        peers = self._peers()
        if peers and self.store.pending():
            peers[0]._ensure_replaying()

    @property
    def _stopped(self) -> bool:
        """No replay is this spiller's to make in this process."""
        return self._shut_down or self._stopped_for_exit

    @property
    def _lock(self) -> SharedLock | threading.RLock:
        """This process's lock (see ``_fork.PerProcess``)."""
        return self._locks.get()

    @property
    def down(self) -> bool:
        """A request failed after its retries and no stored one was delivered since: send new ones to disk."""
        return self._down

    def adopt_files_left(self) -> None:
        """Called as exports are made: now and then, files in the directory that no replay of this process will send
        (left by another process that shares it, killed during an outage) are replayed (revR: a running sibling
        kept a killed one's 40 files for as long as it ran healthy). Lock-free: two threads may both look."""
        now = time.monotonic()
        if now < self._next_look:
            return
        self._next_look = now + LEFT_FILES_LOOK_SECONDS
        if self.store.pending():
            self._ensure_replaying()

    def cut_off(self) -> bool:
        """Whether the cut-off set at exit has passed: no send would end before it, so none is tried, each request
        goes to disk."""
        return self._cutoff is not None and self._cutoff.left() == 0.0

    def spill(self, payload: bytes, items: int) -> bool:
        """Store one request of ``items`` items as it was sent; False if the disk would not take it (the
        caller drops it)."""
        if not self.store.write(payload, items):
            self._down = False  # with no disk to fall back on, requests try the backend as without a spill
            return False
        if not self._down:
            self._down = True
            if self.cut_off():
                logger.warning(
                    "Sends cut off at exit (the exit deadline is near): spilling requests to %s for the next process"
                    " to send.",
                    self.store.directory,
                )
            else:
                logger.warning(
                    "Export failed after its retries: spilling requests to %s until the backend answers again.",
                    self.store.directory,
                )
        self._here.spilled = self.spilled_here() + items
        self._ensure_replaying()
        return True

    @contextmanager
    def sending(self, items: int) -> Iterator[None]:
        """Around the send of one request of ``items`` items on this thread, for a sender that spills it
        knowing its bytes only (the HTTP client): what ``items_sending`` says meanwhile."""
        self._here.sending = items
        try:
            yield
        finally:
            self._here.sending = 0

    def items_sending(self) -> int:
        sending: int = getattr(self._here, "sending", 0)
        return sending

    def spilled_here(self) -> int:
        """Items this thread spilled so far."""
        spilled: int = getattr(self._here, "spilled", 0)
        return spilled

    def counts(self) -> SpillCounts:
        return self.store.counts()

    def stop(self, timeout: float = STOP_WAIT_SECONDS) -> None:
        """Stop replaying (at the exporter's shutdown); what is left stays for the next process.

        Waits (``timeout`` seconds at most, capped at ``STOP_WAIT_SECONDS``) for a replay pass under way
        to end after the file it is sending: once the exporter is shut down, its replays are another
        exporter's (or process's) to make.
        """
        with self._lock:
            self._shut_down = True
        self._wait_for_replay(timeout)
        self.store.tell_evictions_held_back()
        if not self._peers():
            self.store.remove_if_empty()

    def _peers(self) -> list[Spiller]:
        """The live spillers of this process that replay from this one's directory."""
        with _live_lock.get():
            live = list(_live_spillers)
        return [
            peer
            for peer in live
            if peer is not self and peer.store.directory == self.store.directory and not peer._stopped
        ]

    def stop_for_exit(self, timeout: float) -> None:
        """Stop replaying before the interpreter finalizes, the exporter left open (spanbatch's last atexit hook), as
        ``stop`` does; undone in a forked child that lives on (``lives_on``)."""
        with self._lock:
            self._stopped_for_exit = True
        self._wait_for_replay(timeout)
        self.store.tell_evictions_held_back()

    def _wait_for_replay(self, timeout: float) -> None:
        """Ends the replay's pause and waits for a pass under way (see ``stop``)."""
        with self._lock:
            thread = self._thread
        self._stopping.wake()
        if thread is not None and not getattr(self._here, "replaying", False):  # a forked child's join ends at once
            thread.join(max(0.0, min(timeout, STOP_WAIT_SECONDS)))

    def exit_begins(self, sends_end_by: float | None) -> None:
        """The process is exiting: the backend is tried again, a failing request goes to disk now, not after backoffs
        that would outlast the exit deadline (and leave the spans queued behind it to be dropped), and a send still
        waiting for an answer at ``sends_end_by`` (None: once the exit deadline is set) is cut short and goes to
        disk. No replay starts: a probe now would hold the exporter's shutdown up to its timeout, and what waits on
        disk is the next process's to send."""
        with self._lock:
            self._exiting = True
            # The backend gets one more try at exit: one back since the last probe (which may be 30 s away) gets what
            # is ended from now on, which would otherwise wait on disk for a next process that may never run (revR: 0
            # of 500 reached it). A send that fails goes to disk, and the ones after it straight there.
            self._down = False
        if self._cutoff is not None:
            self._cutoff.end_backoff()
            if sends_end_by is not None:
                self._cutoff.set(sends_end_by)

    def lives_on(self) -> None:
        """In a forked child that lives on, whose parent was exiting: it replays, sends with no cut-off and backs off
        between retries, as any live process does."""
        with self._lock:
            was_exiting, self._exiting = self._exiting, False
            self._stopped_for_exit = False
        if was_exiting and self._cutoff is not None:
            self._cutoff.lift()

    def _ensure_replaying(self) -> None:
        # Started outside the lock: ``start`` waits for the new thread, in which a garbage collection may run
        # another exporter's ``_exporter_freed``, which calls this (and takes the lock) to hand its files over.
        with self._lock:
            if self._stopped or self._exiting:
                return
            # A forked child has no thread of its parent's, nor one its parent was starting.
            if self._replaying and self._pid == os.getpid():
                return  # it probes at its own pace: a spill is no sign the backend is back
            self._pid = os.getpid()
            self._replaying = True  # until the thread ends (it says so under the lock): one at a time
        thread = None
        try:
            # A real OS thread even under gevent: a greenlet would wait for a hub that an export thread, waiting in
            # Rust, never runs.
            thread = start_thread(self._replay, "spanbatch-spill-replay")
        except RuntimeError:  # interpreter exit: the next process replays
            pass
        finally:
            with self._lock:
                if thread is None:  # it never ran (the exit, or interrupted): the next spill starts one
                    self._replaying = False
                else:
                    self._thread = thread

    def _send(self, payload: bytes) -> Sent:
        # The exit's cut-off is not the backend's answer: a send it cut short, or one it leaves no time for (not
        # tried), says nothing of the file, which a busy answer would count against.
        if self.cut_off():
            return Sent.UNREACHABLE
        sent = self._send_once(payload)
        if sent is None:  # the exporter was freed meanwhile: the file stays for another to replay, first still
            return Sent.UNREACHABLE
        if sent is Sent.RETRY_LATER and self.cut_off():
            return Sent.UNREACHABLE
        if sent is Sent.DELIVERED:
            # It answers: new requests go to it again from now, not once the stored file is deleted and
            # the pass is over (a request made meanwhile would go to disk behind a backend that is up).
            self._down = False
        return sent

    def _replay(self) -> None:
        self._here.replaying = True  # ``stop`` from this thread waits for no thread
        try:
            self._replay_until_done()
        except BaseException:  # ended by what no pass catches (it says so): the next spill starts another
            with self._lock:
                self._replaying = False
            raise

    def _replay_until_done(self) -> None:
        """Replay passes until nothing waits on disk or the spiller is stopped; it ends saying so under the lock."""
        pause = FIRST_PROBE_SECONDS
        while True:
            with self._lock:
                if self._stopped:
                    self._replaying = False
                    return
            try:
                delivered = self.store.replay(self._send, lambda: self._stopped)
            except Exception:  # never let a bug here end replays silently
                logger.exception("Replaying spilled requests from %s failed.", self.store.directory)
                delivered = 0
            if delivered:
                pause = FIRST_PROBE_SECONDS
            with self._lock:
                if self._stopped:
                    self._replaying = False
                    return
                if not self.store.pending():  # under the lock: a spill now finds no thread and starts one
                    self._down = False  # nothing waits on disk (what did was moved aside, or evicted)
                    self._replaying = False
                    return
            if not delivered:
                self._stopping.wait(pause)
                pause = min(pause * 2, LONGEST_PROBE_SECONDS)


# The live spillers: one of the same backend directory takes over the files of a spiller whose exporter was freed.
# One set, not a set per directory: an exporter per rotating token (headers are part of the directory's name) left
# a key each for good (revT: 2,000 exporters, 3.5 MB).
_live_spillers: weakref.WeakSet[Spiller] = weakref.WeakSet()
# Reentrant: a collection while it is held may free an exporter, whose spiller looks for its peers. This process's own,
# and a real lock under gevent, as the spillers' own (see ``Spiller``).
_live_lock = PerProcess(shared_rlock)
_exiting_spillers: weakref.WeakSet[Spiller] = weakref.WeakSet()
_exit_hooked = False


def _at_exit(spiller: Spiller) -> None:
    global _exit_hooked
    _exiting_spillers.add(spiller)
    if _exit_hooked:
        return
    _exit_hooked = True
    try:
        # As spanbatch's exit does (see ``_exit``): once the main thread is done, a hook that runs
        # first of the atexit hooks, before any provider shuts its processors down.
        threading._register_atexit(lambda: atexit.register(_exit_begins))  # type: ignore[attr-defined]
    except RuntimeError:  # registered during exit: the exit is already under way
        _exit_hooked = False


def _exit_begins() -> None:
    # Behind spanbatch's processors, sends end short of the exit deadline their first shutdown sets
    # (``_exit_deadline_set``): the application's own hooks, which may run first, do not count against the limit, and
    # a cut-off guessed now would send what they end to disk. Behind any other caller (the stock processor, whose
    # shutdown spanbatch does not bound), short of the deadline as it would be for a wait begun now.
    deadline = _exit.exit_deadline_now()
    if deadline is None:  # the main thread's end untold (CPython tells it before this hook): the whole limit left
        deadline = time.monotonic() + _exit.exit_timeout_millis() / 1000
    sends_end_by = _sends_end_by(deadline)
    behind_lanes = [getattr(exporter, "_cutoff", None) for exporter in _exit.lane_exporters()]
    for spiller in list(_exiting_spillers):
        in_lane = any(cutoff is spiller._cutoff for cutoff in behind_lanes)
        spiller.exit_begins(None if in_lane else sends_end_by)


def _exit_deadline_set(deadline: float) -> None:
    # Set by the first shutdown at exit, later than a cut-off ``_exit_begins`` set if the application's own hooks
    # took time; or by SIGTERM's shutdown of every lane, after which the process dies of the signal: no atexit hook
    # runs, and the exit begins here.
    sends_end_by = _sends_end_by(deadline)
    for spiller in list(_exiting_spillers):
        spiller.exit_begins(sends_end_by)


_exit.when_deadline_set(_exit_deadline_set)


def _child_lives_on() -> None:
    for spiller in list(_exiting_spillers):
        spiller.lives_on()


_exit.when_forked_child_lives_on(_child_lives_on)


def _replays_end(millis_left: float) -> None:
    """spanbatch's last atexit hook, which leaves the exporters of the lanes nobody shut down open: a replay still
    going ends after the file it is sending, within the exit deadline, as at the exporter's shutdown. Cut off by the
    interpreter's finalization, it would leave a file the backend took for the next process to send again."""
    deadline = time.monotonic() + millis_left / 1000
    for spiller in list(_exiting_spillers):
        spiller.stop_for_exit(max(0.0, deadline - time.monotonic()))


_exit.before_finalizing(_replays_end)


def _sends_end_by(deadline: float) -> float:
    """When sends must end at exit for what they hold to reach the disk by ``deadline`` (see ``DISK_SHARE``)."""
    return deadline - min(LONGEST_DISK_SECONDS, max(0.0, deadline - time.monotonic()) * DISK_SHARE)


def spiller_for(
    spill_dir: str | os.PathLike[str] | None,
    max_bytes: int | None,
    *,
    protocol: str,
    endpoint: str,
    identity: Callable[[], Identity],  # read only if a spill directory is set
    compression: str,
    spill_key: str | None,
    send_once: Callable[[bytes], Sent],
    cutoff: Cutoff,
) -> Spiller | None:
    """The exporter's spiller, or None when no spill directory is set (argument, else ``SPANBATCH_SPILL_DIR``), or
    when what its requests are sent as (``identity()``) cannot be read and no ``spill_key`` stands for it (told
    once).

    A bad ``max_bytes`` or ``spill_key`` raises either way: whether a directory is set may differ where the code
    runs."""
    cap = None if max_bytes is None else checked_argument(_settings.SPILL_MAX_BYTES, max_bytes)
    if spill_key is not None and (not isinstance(spill_key, str) or not spill_key):
        raise ValueError(f"spill_key must be a non-empty string, not {spill_key!r}")
    root = spill_directory(spill_dir)
    if root is None:
        return None
    if spill_key is None:  # as a zero-code set-up gives it, which cannot pass the argument
        spill_key = read(_settings.SPILL_KEY)
    sent_as = identity()  # only now: nothing of a session's is looked at (nor a certificate read) without a spill
    keyed = dict(sent_as.keyed)
    if spill_key is not None:
        keyed["spill_key"] = spill_key
    elif sent_as.unreadable is not None:
        _refuse_once(protocol, endpoint, sent_as.unreadable)
        return None
    if cap is None:
        cap = read(_settings.SPILL_MAX_BYTES)
    store = SpillStore(backend_directory(root, protocol, endpoint, sent_as.headers, compression, keyed=keyed), cap)
    return Spiller(store, send_once, cutoff)


_refused: set[tuple[str, str, str]] = set()  # told of once per process: an exporter may be made per request


def _refuse_once(protocol: str, endpoint: str, unreadable: str) -> None:
    if (protocol, endpoint, unreadable) in _refused:
        return
    _refused.add((protocol, endpoint, unreadable))
    logger.warning(
        "No disk spill for the %s exporter to %s: it sends with %s, which spanbatch cannot read to keep its spilled"
        " requests apart from other exporters' (another tenant's would be replayed with its credentials). Its failed"
        " requests fail as without a spill directory. Give it spill_key=, a name for whom it sends as, the same in"
        " every process and for no other credentials, to spill.",
        protocol,
        endpoint,
        unreadable,
    )


@contextmanager
def spills_of(spiller: Spiller | None, batch: object) -> Iterator[None]:
    """Around the export of ``batch``: notes for spanbatch's export loop the items ``spiller`` stored on
    disk meanwhile on this thread (see ``_encoding.items_spilled``), so that they count as ``spilled``."""
    if spiller is None:
        yield
        return
    before = spiller.spilled_here()
    try:
        yield
    finally:
        note_spilled(batch, spiller.spilled_here() - before)
