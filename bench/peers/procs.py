"""CPU seconds and peak RSS of a contender's processes, read from /proc the same way for all.

A contender names its long-lived root processes; their descendants (rsync's forked
daemon children) are found by a sampler thread. CPU is user+system time of the roots,
including children they have reaped, plus that of live descendants. Peak RSS is the sum
over processes of each one's high-water mark (VmHWM), which is reset at the start of
each measurement through /proc/PID/clear_refs where the kernel allows it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pid: int, *, children: bool = True) -> float:
    """User + system seconds of `pid` (and of the children it has waited for)."""
    f = _stat(pid)
    if f is None:
        return 0.0
    ticks = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if children else 0)
    return ticks / TICK


def status_kib(pid: int, key: str) -> int:
    """A `/proc/PID/status` figure in KiB (VmRSS, VmHWM), 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak(pid: int) -> None:
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def children_of(pids: set[int]) -> set[int]:
    """Every live descendant of `pids`."""
    parent: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (f := _stat(int(entry.name))) is not None:
            parent[int(entry.name)] = int(f[1])
    found: set[int] = set()
    frontier = set(pids)
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier and p not in found}
        found |= frontier
    return found


@dataclass
class Usage:
    cpu: float  # seconds
    peak_rss: int  # bytes, summed over processes


@dataclass
class Meter:
    """Measures the processes `roots()` returns between `start()` and `stop()`."""

    roots: list[int]
    watch_children: bool = False  # sample short-lived descendants (rsync's forks)
    interval: float = 0.05
    _cpu0: float = 0.0
    _kids0: dict[int, float] = field(default_factory=dict)
    _kids: dict[int, float] = field(default_factory=dict)
    _peak: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    extra_cpu: float = 0.0  # processes run and waited for by the harness (rsync pushes)
    extra_rss: int = 0

    def start(self) -> None:
        for pid in self.roots:
            reset_peak(pid)
        self._cpu0 = sum(cpu_seconds(p) for p in self.roots)
        self._kids0 = {p: cpu_seconds(p, children=False) for p in children_of(set(self.roots))}
        self._stop.clear()
        if self.watch_children:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._look()
            self._stop.wait(self.interval)

    def _look(self) -> None:
        for pid in children_of(set(self.roots)):
            self._kids[pid] = cpu_seconds(pid, children=False)
            self._peak[pid] = max(self._peak.get(pid, 0), status_kib(pid, "VmHWM"))

    def stop(self) -> Usage:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._thread = None
        live = set()
        if self.watch_children:
            self._look()
            live = children_of(set(self.roots))
        cpu = sum(cpu_seconds(p) for p in self.roots) - self._cpu0
        cpu += sum(self._kids.get(p, 0.0) - self._kids0.get(p, 0.0) for p in live)
        rss = sum(status_kib(p, "VmHWM") for p in self.roots) + sum(self._peak.values())
        usage = Usage(cpu + self.extra_cpu, rss * 1024 + self.extra_rss)
        self._kids, self._peak, self.extra_cpu, self.extra_rss = {}, {}, 0.0, 0
        return usage


def wait_quiet(probe: object, quiet: float = 1.0, timeout: float = 60.0) -> None:
    """Wait until `probe()` returns the same value for `quiet` seconds (or `timeout`)."""
    deadline = time.monotonic() + timeout
    last, since = probe(), time.monotonic()  # type: ignore[operator]
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = probe()  # type: ignore[operator]
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
