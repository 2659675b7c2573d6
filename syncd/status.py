"""What the daemon is doing, readable from any thread (CLI, tray) as a plain dict.

Besides the state, the snapshot carries what a person watching wants to see: the
progress of the current batch (files and bytes done / total, per direction, so a
client derives rate and ETA), whether it is the initial sync, and the last changes.
Every change bumps `version`; `wait_change(since, timeout)` lets a client (the tray,
`status --watch`) block until something changed instead of polling.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("syncd.status")
RECENT = 20  # changes kept for the tray's "Recent changes" and `status --watch`
DIRECTIONS = ("up", "down")


@dataclass
class Transfer:
    """One direction's progress through the current batch (a sync cycle)."""

    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    finished_bytes: int = 0  # sizes of the files completed this batch

    def as_dict(self) -> dict[str, int]:
        return {
            "files_done": self.files_done,
            "files_total": self.files_total,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
        }


def _fresh_transfers() -> dict[str, Transfer]:
    return {d: Transfer() for d in DIRECTIONS}


@dataclass
class SyncStatus:
    folder: str = ""
    server: str = ""
    device: str = ""
    paused: bool = False
    busy: bool = False
    files_up: int = 0
    bytes_up: int = 0
    files_down: int = 0
    bytes_down: int = 0
    offline_since: float | None = None
    next_retry: float | None = None
    offline_reason: str | None = None
    error: dict | None = None  # {"path", "reason"}: the sync cannot go on until fixed
    problems: dict[str, str] = field(default_factory=dict)  # skipped paths
    last_sync: float | None = None
    conflicts: list[str] = field(default_factory=list)
    uploaded_bytes_total: int = 0  # chunk bytes sent since the daemon started
    downloaded_bytes_total: int = 0  # chunk bytes fetched from the server since start
    initial: bool = False  # the first sync of this folder has not completed yet
    batch_started: float | None = None
    transfers: dict[str, Transfer] = field(default_factory=_fresh_transfers)
    recent: deque[dict] = field(default_factory=lambda: deque(maxlen=RECENT))
    version: int = 0
    clock: Callable[[], float] = field(default=time.time, repr=False)
    _lock: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def _now(self) -> float:
        return self.clock()

    def _changed(self) -> None:
        """Call with the lock held."""
        self.version += 1
        self._lock.notify_all()

    def update(self, **changes: object) -> None:
        with self._lock:
            dirty = False
            for key, value in changes.items():
                if getattr(self, key) != value:
                    setattr(self, key, value)
                    dirty = True
            if dirty:
                self._changed()

    def count(self, direction: str, nbytes: int) -> None:
        """Record chunk bytes that crossed the wire ("up" or "down")."""
        with self._lock:
            if direction == "up":
                self.uploaded_bytes_total += nbytes
                self.bytes_up = max(0, self.bytes_up - nbytes)
            else:
                self.downloaded_bytes_total += nbytes
                self.bytes_down = max(0, self.bytes_down - nbytes)
            t = self.transfers[direction]
            t.bytes_done = min(t.bytes_total, t.bytes_done + nbytes)
            self._changed()

    # -- progress of a batch (called by the sync loop) -----------------------------------
    def plan(self, files_up: int, bytes_up: int, files_down: int, bytes_down: int) -> None:
        """A planning round found this much to do; it adds to the current batch."""
        with self._lock:
            if self.offline_since is not None:  # the plan rests on a pull: we are back
                log.info("back online")
                self.offline_since = self.next_retry = self.offline_reason = None
            self.files_up, self.bytes_up = files_up, bytes_up
            self.files_down, self.bytes_down = files_down, bytes_down
            if self.batch_started is None:
                self.batch_started = self._now()
            todo = (("up", files_up, bytes_up), ("down", files_down, bytes_down))
            for direction, files, nbytes in todo:
                t = self.transfers[direction]
                t.files_total = t.files_done + files
                t.bytes_total = t.finished_bytes + nbytes
                t.bytes_done = min(t.bytes_done, t.bytes_total)
            self._changed()

    def finished(self, changes: list[tuple[str, str, str, int]]) -> None:
        """Changes that completed: (path, direction "up"|"down"|"both", action, size)."""
        if not changes:
            return
        with self._lock:
            now = self._now()
            for path, direction, action, size in changes:
                for d in DIRECTIONS if direction == "both" else (direction,):
                    t = self.transfers[d]
                    t.files_done = min(t.files_total, t.files_done + 1)
                    t.finished_bytes += size
                    t.bytes_done = min(t.bytes_total, max(t.bytes_done, t.finished_bytes))
                self.recent.appendleft(
                    {"path": path, "direction": direction, "action": action, "time": now}
                )
            self._changed()

    def finish_cycle(self, now: float) -> None:
        """The batch is done: nothing left to do, the initial sync (if any) complete."""
        with self._lock:
            self.files_up = self.bytes_up = self.files_down = self.bytes_down = 0
            self.last_sync = now
            self.initial = False
            self.batch_started = None
            self.transfers = _fresh_transfers()
            self._changed()

    # -- readers -----------------------------------------------------------------------
    def wait_change(self, since: int, timeout: float) -> int:
        """Block until `version` differs from `since` (or `timeout` s); return it."""
        with self._lock:
            self._lock.wait_for(lambda: self.version != since, timeout=max(0.0, timeout))
            return self.version

    def state(self) -> str:
        if self.paused:
            return "paused"
        if self.error is not None:
            return "error"
        if self.offline_since is not None:
            return "offline"
        if self.busy or self.files_up or self.files_down:
            return "syncing"
        return "up to date"

    def _progress(self) -> dict:
        active = self.busy or any(t.files_total for t in self.transfers.values())
        phase = ("initial" if self.initial else "sync") if active else None
        return {
            "phase": phase,
            "started": self.batch_started,
            **{d: t.as_dict() for d, t in self.transfers.items()},
        }

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "state": self.state(),
                "version": self.version,
                "folder": self.folder,
                "server": self.server,
                "device": self.device,
                "files_up": self.files_up,
                "bytes_up": self.bytes_up,
                "files_down": self.files_down,
                "bytes_down": self.bytes_down,
                "offline_since": self.offline_since,
                "next_retry": self.next_retry,
                "offline_reason": self.offline_reason,
                "error": self.error,
                "problems": [{"path": p, "reason": r} for p, r in sorted(self.problems.items())],
                "last_sync": self.last_sync,
                "uploaded_bytes_total": self.uploaded_bytes_total,
                "downloaded_bytes_total": self.downloaded_bytes_total,
                "progress": self._progress(),
                "recent": list(self.recent),
                "conflicts_made": list(self.conflicts),  # by this daemon since it started
                "now": self._now(),
            }
