"""Filesystem events (watchdog) turned into batches of relative paths to rescan (D8).

Events are hints, never facts: a created, modified, deleted, closed-after-write or
attribute event marks its path dirty; a move marks both ends. Folder "modified" and
"attrib" events are dropped (a child's own event says what changed; rescanning a
whole folder for them would be waste). Paths inside the client's state folder
`<root>/.syncd` are dropped, and so are ignored paths if an Ignore is given.

When events may have been lost, `on_overflow()` is called instead of `on_batch`
(a full rescan covers the batch's paths too), and `last_loss` says why: the kernel's
inotify queue overflowed (watchdog only logs it, so a handler on the "watchdog" logger
listens for that warning; an application that raises that logger's level above
WARNING leaves overflows to the periodic rescan), the observer thread died, watching
could not start (e.g. the inotify watch limit; `error` is then set), or the root
itself was moved or deleted. The daemon keeps its periodic full rescan in any case.

Threads: watchdog's observer thread calls in with events; the Watcher's own thread
releases debounced batches to the callbacks (e.g. a queue's `put`), never holding its
lock while doing so. Paths still pending at `stop()` are dropped: a start-up scan
covers them.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from watchdog.events import (
    EVENT_TYPE_ATTRIB,
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

from syncd.indexer.ignore import IGNORE_FILE, STATE_DIR
from syncd.watcher.debounce import (
    DEFAULT_BURST,
    DEFAULT_MAX_DELAY,
    DEFAULT_QUIET,
    Batch,
    Clock,
    Debouncer,
)
from syncd.watcher.skipping import observer as make_observer

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

    from syncd.indexer.ignore import Ignore

__all__ = ["STATE_DIR", "Watcher"]

log = logging.getLogger("syncd.watcher")

OVERFLOW = "file-change events were lost (event queue overflow)"
STOPPED = "file watching stopped; changes are found by periodic rescans"
ROOT_GONE = "the sync folder itself was moved or deleted"

_FILE_EVENTS = {EVENT_TYPE_CREATED, EVENT_TYPE_MODIFIED, EVENT_TYPE_DELETED, EVENT_TYPE_CLOSED}
_DIR_EVENTS = {EVENT_TYPE_CREATED, EVENT_TYPE_DELETED}
_COMPLETE = {EVENT_TYPE_CLOSED, EVENT_TYPE_MOVED}
# What the kernel is asked for: every event `_event` uses, and not the opens and
# no-write closes it ignores. Each read of a file in the folder, syncd's own included
# (rebuilding a 100 MiB file reads ~1,300 chunks of local copies), was two events for
# watchdog to decode in Python, contending for the GIL with the sync itself.
_WANTED = [
    FileCreatedEvent,
    DirCreatedEvent,
    FileModifiedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileDeletedEvent,
    DirDeletedEvent,
    FileMovedEvent,
    DirMovedEvent,
]


class Watcher:
    """Watches `root` recursively; debounced dirty paths go to `on_batch(paths)`.

    `ignore`: drop ignored paths early; give the Watcher its own Ignore (it reloads it
    on `.syncignore` events from the observer thread). `clock`: for tests.
    """

    def __init__(
        self,
        root: Path | str,
        on_batch: Callable[[frozenset[str]], object],
        *,
        on_overflow: Callable[[], object],
        quiet: float = DEFAULT_QUIET,
        max_delay: float = DEFAULT_MAX_DELAY,
        burst: int = DEFAULT_BURST,
        clock: Clock | None = None,
        ignore: Ignore | None = None,
        health_interval: float = 1.0,
    ) -> None:
        self.root = os.path.abspath(root)
        self.on_batch = on_batch
        self.on_overflow = on_overflow
        self.ignore = ignore
        self.health_interval = health_interval
        self.error: str | None = None  # set once watching failed; the reason
        self.last_loss: str | None = None  # why the latest full rescan was asked for
        self._roots = (self.root, os.path.realpath(self.root))  # FSEvents reports real paths
        self._prefixes = tuple({r.rstrip(os.sep) + os.sep for r in self._roots})
        self._debouncer = Debouncer(quiet, max_delay, clock, burst)
        self._cond = threading.Condition()
        self._stopping = False
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None
        self._spotter = _OverflowSpotter(self._lost)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start watching. Never raises for watching trouble: it becomes a rescan batch."""
        observer = make_observer(os.path.join(self.root, STATE_DIR))  # not watched at all
        try:
            observer.schedule(_Handler(self), self.root, recursive=True, event_filter=_WANTED)
            observer.start()
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            self._fail(f"cannot watch {self.root}: {reason}")
        else:
            self._observer = observer
        logging.getLogger("watchdog").addHandler(self._spotter)
        self._thread = threading.Thread(target=self._run, name="syncd-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        logging.getLogger("watchdog").removeHandler(self._spotter)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state (for status displays and tests) -----------------------------------------
    def pending(self) -> frozenset[str]:
        """Dirty paths not yet released."""
        with self._cond:
            return self._debouncer.pending

    def poke(self) -> None:
        """Wake the releasing thread now (e.g. after an injected clock moved on)."""
        with self._cond:
            self._cond.notify_all()

    # -- events (observer thread) ------------------------------------------------------
    def _event(self, event: FileSystemEvent) -> None:
        kinds = _DIR_EVENTS if event.is_directory else _FILE_EVENTS
        if event.event_type == EVENT_TYPE_MOVED:
            raw = [event.src_path, event.dest_path]
        elif event.event_type in kinds or (
            event.event_type == EVENT_TYPE_ATTRIB and not event.is_directory
        ):
            raw = [event.src_path]
        else:
            return
        paths = []
        for item in raw:
            rel = self._relative(os.fsdecode(item))
            if rel == "":
                if event.event_type in (EVENT_TYPE_DELETED, EVENT_TYPE_MOVED):
                    self._lost(ROOT_GONE)
            elif rel is not None and self._wanted(rel, event.is_directory):
                paths.append(rel)
        if paths:
            # a file closed after writing, or moved into place, is complete: in a long
            # burst it may go before the burst is over (`Debouncer`). So is a folder
            # moved: its files' own moves follow at once, and a batch holding some of
            # them without the folder would send the old folder's deletion along with
            # only the new files it held (the scan of a folder covers its subtree)
            complete = event.event_type == EVENT_TYPE_MOVED or (
                not event.is_directory and event.event_type in _COMPLETE
            )
            with self._cond:
                self._debouncer.add(paths, complete=complete)
                self._cond.notify_all()

    def _relative(self, path: str) -> str | None:
        """The '/'-separated path below the root; '' for the root; None if outside."""
        if path.rstrip(os.sep) in self._roots:
            return ""
        for prefix in self._prefixes:
            if path.startswith(prefix):
                rel = path[len(prefix) :]
                return rel.replace(os.sep, "/") if os.sep != "/" else rel
        return None

    def _wanted(self, rel: str, is_dir: bool) -> bool:
        if rel == STATE_DIR or rel.startswith(STATE_DIR + "/"):
            return False
        if self.ignore is None:
            return True
        if rel == IGNORE_FILE:
            self.ignore.reload()
            return True
        return not self.ignore.ignored(rel, is_dir)

    def _lost(self, reason: str) -> None:
        log.warning("%s: %s; asking for a full rescan", self.root, reason)
        with self._cond:
            self._debouncer.rescan_all(reason)
            self._cond.notify_all()

    def _fail(self, reason: str) -> None:
        if self.error is None:
            self.error = reason
            self._lost(reason)

    # -- releasing batches (own thread) ------------------------------------------------
    def _run(self) -> None:
        debouncer = self._debouncer
        with self._cond:
            while not self._stopping:
                self._check_health()
                batch = debouncer.take()
                if batch is not None:
                    self._cond.release()
                    try:
                        self._deliver(batch)
                    finally:
                        self._cond.acquire()
                    continue
                timeout = self.health_interval
                deadline = debouncer.deadline()
                if deadline is not None:
                    timeout = min(timeout, max(0.0, deadline - debouncer.clock.now()))
                self._cond.wait(timeout)

    def _check_health(self) -> None:
        observer = self._observer
        if observer is None or self.error is not None:
            return
        if not observer.is_alive() or not all(e.is_alive() for e in list(observer.emitters)):
            self.error = STOPPED
            log.warning("%s: %s", self.root, STOPPED)
            self._debouncer.rescan_all(STOPPED)

    def _deliver(self, batch: Batch) -> None:
        try:
            if batch.rescan_all:
                self.last_loss = batch.reason
                self.on_overflow()
            elif batch.paths:
                self.on_batch(batch.paths)
        except Exception:
            log.exception("the batch consumer failed; batch dropped")


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        super().__init__()
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.watcher._event(event)


class _OverflowSpotter(logging.Handler):
    """watchdog logs a kernel queue overflow but sends no event: listen for the log."""

    def __init__(self, on_overflow: Callable[[str], None]) -> None:
        super().__init__(logging.WARNING)
        self.on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.on_overflow(OVERFLOW)
