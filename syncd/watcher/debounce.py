"""Coalescing of bursts of dirty paths into batches, on an injected clock (D8).

A batch is released once no new path has arrived for `quiet` seconds, or `max_delay`
seconds after its first path at the latest (a file written without pause must still
get scanned). An editor's save (write a temp file, rename it over the original,
delete the backup) takes milliseconds, so it lands in one batch.

Defaults: quiet 0.5 s (fast enough to feel instant, slow enough to cover a save
dance or `git checkout`), max_delay 5 s.

In a long burst (a folder copied in, an archive unpacked), paths whose latest event
says they are complete (a file closed after writing, a file or folder moved into place)
go out as soon as `burst` of them are pending, without waiting for the quiet: the sync
starts on the first files while the rest are still being written. Everything else
(folders created, files still open) waits for the quiet as before.

The Debouncer does no locking and never sleeps: its owner (the Watcher) serializes
calls and decides when to look again, using `deadline()`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "DEFAULT_BURST",
    "DEFAULT_MAX_DELAY",
    "DEFAULT_QUIET",
    "Batch",
    "Clock",
    "Debouncer",
    "MonotonicClock",
]

DEFAULT_QUIET = 0.5
DEFAULT_MAX_DELAY = 5.0
DEFAULT_BURST = 200  # complete files that go out without waiting for the quiet


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale (only differences matter)."""
        ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()


@dataclass(frozen=True)
class Batch:
    """Relative paths to rescan; `rescan_all`: events were lost, scan everything."""

    paths: frozenset[str]
    rescan_all: bool = False
    reason: str | None = None  # why a full rescan is needed (overflow, watcher failure)


class Debouncer:
    def __init__(
        self,
        quiet: float = DEFAULT_QUIET,
        max_delay: float = DEFAULT_MAX_DELAY,
        clock: Clock | None = None,
        burst: int = DEFAULT_BURST,
    ) -> None:
        if quiet < 0 or max_delay < quiet:
            raise ValueError("need 0 <= quiet <= max_delay")
        if burst < 1:
            raise ValueError("need burst >= 1")
        self.quiet = quiet
        self.max_delay = max_delay
        self.burst = burst
        self.clock = clock or MonotonicClock()
        self._paths: set[str] = set()
        self._complete: set[str] = set()  # pending paths whose latest event ended a write
        self._rescan_all = False
        self._reason: str | None = None
        self._first: float | None = None
        self._last = 0.0

    def __len__(self) -> int:
        return len(self._paths)

    @property
    def pending(self) -> frozenset[str]:
        return frozenset(self._paths)

    def add(self, paths: Iterable[str], *, complete: bool = False) -> None:
        """Mark paths dirty; any path, even one already pending, restarts the quiet time.

        `complete`: this event ends a write (a file closed after writing, or moved into
        place); any other event of a path makes it incomplete again."""
        fresh = list(paths)
        if fresh:
            self._paths.update(fresh)
            if complete:
                self._complete.update(fresh)
            else:
                self._complete.difference_update(fresh)
            self._touch()

    def rescan_all(self, reason: str) -> None:
        """Events were lost: the next batch asks for a full rescan."""
        self._rescan_all = True
        self._reason = self._reason or reason
        self._touch()

    def _touch(self) -> None:
        now = self.clock.now()
        if self._first is None:
            self._first = now
        self._last = now

    def deadline(self) -> float | None:
        """Clock time at which the pending batch is due; None if nothing is pending."""
        if self._first is None:
            return None
        if self._early():
            return self._last  # due now: a burst's complete files
        return self._whole_due(self._first)

    def _whole_due(self, first: float) -> float:
        """When the whole batch is due: after the quiet, or at the max delay."""
        return min(self._last + self.quiet, first + self.max_delay)

    def _early(self) -> bool:
        return len(self._complete) >= self.burst and not self._rescan_all

    def take(self, *, force: bool = False) -> Batch | None:
        """The pending batch if it is due (or `force`), else None; resets on release.
        In a burst, only its complete files may be due: they go, the rest stays."""
        if self._first is None:
            return None
        if not force and self.clock.now() < self._whole_due(self._first):
            if not self._early():
                return None
            batch = Batch(frozenset(self._complete))
            self._paths -= self._complete
            self._complete = set()
            if not self._paths:
                self._first = None
            return batch
        batch = Batch(frozenset(self._paths), self._rescan_all, self._reason)
        self._paths = set()
        self._complete = set()
        self._rescan_all = False
        self._reason = None
        self._first = None
        return batch
