"""Status snapshots as words for people: sizes, times, the one-line status, rate and ETA.

Pure functions of the daemon's status snapshot (syncd/status.py), shared by the CLI,
`syncd status --watch` and the tray, so all three say the same thing.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

DIRECTIONS = ("up", "down")


def human_size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1000
        if value < 999.95 or unit == "TB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def clock(ts: float, now: float) -> str:
    """Local time of `ts`: just the time if it is today, else date and time."""
    t = time.localtime(ts)
    if time.strftime("%Y-%m-%d", t) == time.strftime("%Y-%m-%d", time.localtime(now)):
        return time.strftime("%H:%M:%S", t)
    return time.strftime("%Y-%m-%d %H:%M:%S", t)


def short_clock(ts: float, now: float) -> str:
    """`14:02` today, `Mar 3 14:02` another day (for a one-line status)."""
    t = time.localtime(ts)
    if time.strftime("%Y-%m-%d", t) == time.strftime("%Y-%m-%d", time.localtime(now)):
        return time.strftime("%H:%M", t)
    return f"{time.strftime('%b', t)} {t.tm_mday} {time.strftime('%H:%M', t)}"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class Totals:
    """The current batch over both directions."""

    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0

    @property
    def files_left(self) -> int:
        return max(0, self.files_total - self.files_done)

    @property
    def bytes_left(self) -> int:
        return max(0, self.bytes_total - self.bytes_done)


def totals(snap: dict, directions: tuple[str, ...] = DIRECTIONS) -> Totals:
    progress = snap.get("progress") or {}
    parts = [progress.get(d) or {} for d in directions]
    return Totals(*(sum(int(p.get(k) or 0) for p in parts) for k in Totals.__dataclass_fields__))


def status_line(snap: dict, now: float) -> str:
    """One line: "Up to date", "Syncing 12 files — 35 MB left", "Offline since 14:02"…"""
    state = snap.get("state")
    if state == "up to date":
        return "Up to date"
    if state == "syncing":
        t = totals(snap)
        initial = (snap.get("progress") or {}).get("phase") == "initial"
        if not t.files_left:
            return "Initial sync: looking for changes…" if initial else "Looking for changes…"
        left = f" — {human_size(t.bytes_left)} left" if t.bytes_left else ""
        what = plural(t.files_left, "file")
        return f"Initial sync: {what}{left}" if initial else f"Syncing {what}{left}"
    if state == "paused":
        return "Paused"
    if state == "offline":
        since = snap.get("offline_since")
        return f"Offline since {short_clock(since, now)}" if since else "Offline"
    if state == "error":
        err = snap.get("error") or {}
        where = f"{err['path']}: " if err.get("path") else ""
        return f"Error: {where}{err.get('reason') or 'unknown'}"
    if state == "not running":
        return "syncd is not running"
    return str(state).capitalize()


def duration(seconds: float) -> str:
    """`42 s`, `3 min 05 s`, `2 h 10 min`."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class RateMeter:
    """Bytes per second over the last `window` seconds of samples (times are given)."""

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, t: float, done: int) -> None:
        if self._samples and done < self._samples[-1][1]:
            self._samples.clear()  # a new batch started
        self._samples.append((t, done))
        while len(self._samples) > 2 and t - self._samples[0][0] > self.window:
            self._samples.popleft()

    def rate(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else None

    def eta(self, left: int) -> float | None:
        rate = self.rate()
        if not left:
            return 0.0
        return left / rate if rate else None
