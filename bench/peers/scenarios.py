"""The eight scenarios of the head-to-head, each run on every contender in turn.

Scenarios 1-7 share one pair of devices per contender and build on each other (the big
file of 2 is edited by 3 and 4 and copied by 7). Repetitions alternate between the
contenders, so a noisy stretch of time hits all of them alike. Scenario 8 starts each
contender afresh on its own large folder.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.peers.contenders.base import Contender, poll
from bench.peers.measure import Expect, Sample, measure, settle
from bench.peers.procs import cpu_seconds, status_kib

KIB, MIB = 1 << 10, 1 << 20


@dataclass(frozen=True)
class Sizes:
    latency_runs: int = 20
    latency_bytes: int = 10 * KIB
    big: int = 100 * MIB
    many: int = 2000
    many_bytes: int = 100 * KIB
    rename_files: int = 1000
    rename_bytes: int = 100 * KIB
    idle_files: int = 100_000
    idle_bytes: int = 1 * KIB
    idle_seconds: float = 60.0
    repeat: int = 3  # runs of scenarios 2-7 and of the restart
    quiet: float = 1.0
    is_quick: bool = False

    @classmethod
    def quick(cls) -> Sizes:
        return cls(2, 10 * KIB, 2 * MIB, 40, 10 * KIB, 20, 10 * KIB, 300, 100, 1.0, 1, 0.3, True)


TITLES = {
    "1": "new 10 KiB file on A until byte-identical on B",
    "2": "first copy of a 100 MiB file",
    "3": "1-byte overwrite in the middle of it",
    "4": "1-byte insertion at its start",
    "5": "2,000 files of 100 KiB created at once",
    "6": "rename of a folder holding 1,000 files",
    "7": "copy of the 100 MiB file inside the folder",
    "8": "100,000 small files: idle 60 s, restart",
}

QUICK_SKIP = "not run in quick mode (see the contender's quick_scenarios)"
STALLED = "not run: an earlier wait of this contender timed out"
Results = dict[str, dict[str, list[Sample]]]  # scenario -> contender -> samples


class Run:
    """Scenarios 1-7 over the started contenders; samples land in `results`."""

    def __init__(self, contenders: list[Contender], sizes: Sizes, log: Callable[[str], None]):
        self.cs = contenders
        self.sizes = sizes
        self.log = log
        self.results: Results = {}
        self.failed: dict[str, dict[str, str]] = {}  # scenario -> contender -> why
        self.stalled: set[str] = set()  # contenders that timed out: not run any further
        self.big = bytearray()

    def step(self, sid: str) -> None:
        steps = {
            "1": self.latency,
            "2": self.first_copy,
            "3": self.overwrite,
            "4": self.insertion,
            "5": self.many,
            "6": self.rename,
            "7": self.copy,
        }
        steps[sid]()

    def wants(self, c: Contender, sid: str) -> bool:
        """In quick mode a contender may run only some scenarios (the table says so)."""
        return not self.sizes.is_quick or c.quick_scenarios is None or sid in c.quick_scenarios

    def _each(self, sid: str, change_for: Callable[[Contender], tuple[Callable, Expect]]) -> None:
        for c in self.cs:
            if not self.wants(c, sid):
                self.failed.setdefault(sid, {}).setdefault(c.name, QUICK_SKIP)
                continue
            if c.name in self.failed.get(sid, {}) or self._broken(c, sid):
                continue
            change, expect = change_for(c)
            try:
                sample = measure(c, change, expect, quiet=self.sizes.quiet)
            except Exception as exc:
                self.failed.setdefault(sid, {})[c.name] = f"{type(exc).__name__}: {exc}"
                self.log(f"  {c.name}: FAILED {exc}")
                if isinstance(exc, TimeoutError):
                    self.stalled.add(c.name)  # its later scenarios would only wait again
                continue
            self.results.setdefault(sid, {}).setdefault(c.name, []).append(sample)
            self.log(
                f"  {sid} {c.name:13} {sample.seconds:8.3f} s  up {sample.up:>11,}"
                f"  wire {sample.wire:>11,}  cpu {sample.cpu:6.2f} s"
            )

    def _broken(self, c: Contender, sid: str) -> bool:
        if c.name in self.stalled:
            self.failed.setdefault(sid, {}).setdefault(c.name, STALLED)
            return True
        return any(c.name in f and "setup" in f[c.name] for f in self.failed.values())

    def _prepare(self, sid: str, c: Contender, make: Callable[[], None], expect: Expect) -> bool:
        """An unmeasured change every contender must carry before scenario `sid`."""
        if not self.wants(c, sid) or self._broken(c, sid):
            return False
        try:
            make()
            c.after_change()
            poll(expect.done, f"{c.name}: setup of scenario {sid} on B", 1800, 0.1)
            settle(c, self.sizes.quiet)
            return True
        except Exception as exc:
            self.failed.setdefault(sid, {})[c.name] = f"setup: {type(exc).__name__}: {exc}"
            if isinstance(exc, TimeoutError):
                self.stalled.add(c.name)
            self.log(f"  {c.name}: setup of {sid} FAILED {exc}")
            return False

    # -- 1 ---------------------------------------------------------------------------
    def latency(self) -> None:
        for c in self.cs:
            self._prepare("1", c, lambda c=c: (c.a / "lat").mkdir(), Expect.of(c.b, {}))
        for i in range(self.sizes.latency_runs):
            data = os.urandom(self.sizes.latency_bytes)
            rel = f"lat/{i:03}.bin"
            self._each("1", lambda c, d=data, r=rel: (lambda: _write(c.a / r, d), _exp(c, {r: d})))

    # -- 2, 3, 4 ---------------------------------------------------------------------
    def first_copy(self) -> None:
        for r in range(self.sizes.repeat):
            data = os.urandom(self.sizes.big)
            if r == 0:
                self.big = bytearray(data)
            rel = f"big-{r}.bin"
            self._each("2", lambda c, d=data, p=rel: (lambda: _write(c.a / p, d), _exp(c, {p: d})))

    def overwrite(self) -> None:
        mid = len(self.big) // 2
        for r in range(self.sizes.repeat):
            self.big[mid + r] ^= 0xFF
            new = bytes(self.big[mid + r : mid + r + 1])
            self._each(
                "3",
                lambda c, n=new, at=mid + r: (
                    lambda: _poke(c.a / "big-0.bin", at, n),
                    _exp(c, {"big-0.bin": self.big}),
                ),
            )

    def insertion(self) -> None:
        for r in range(self.sizes.repeat):
            self.big[0:0] = bytes([33 + r])
            data = bytes(self.big)
            self._each(
                "4",
                lambda c, d=data: (lambda: _write(c.a / "big-0.bin", d), _exp(c, {"big-0.bin": d})),
            )

    # -- 5 ---------------------------------------------------------------------------
    def many(self) -> None:
        for r in range(self.sizes.repeat):
            files = {
                f"many-{r}/f{i:05}.bin": os.urandom(self.sizes.many_bytes)
                for i in range(self.sizes.many)
            }
            self._each("5", lambda c, f=files: (lambda: _write_all(c.a, f), _exp(c, f)))

    # -- 6 ---------------------------------------------------------------------------
    def rename(self) -> None:
        files = {
            f"f{i:05}.bin": os.urandom(self.sizes.rename_bytes)
            for i in range(self.sizes.rename_files)
        }
        for c in self.cs:
            tree = {f"ren-0/{n}": d for n, d in files.items()}
            self._prepare("6", c, lambda c=c, t=tree: _write_all(c.a, t), _exp(c, tree))
        for r in range(self.sizes.repeat):
            src, dst = f"ren-{r}", f"ren-{r + 1}"
            moved = {f"{dst}/{n}": d for n, d in files.items()}
            self._each(
                "6",
                lambda c, s=src, d=dst, m=moved: (
                    lambda: os.rename(c.a / s, c.a / d),
                    Expect.of(c.b, m, [s]),
                ),
            )

    # -- 7 ---------------------------------------------------------------------------
    def copy(self) -> None:
        data = bytes(self.big)
        for r in range(self.sizes.repeat):
            rel = f"copy-{r}.bin"
            self._each(
                "7",
                lambda c, p=rel: (
                    lambda: shutil.copyfile(c.a / "big-0.bin", c.a / p),
                    _exp(c, {p: data}),
                ),
            )


@dataclass
class IdleResult:
    sync_seconds: float  # the initial copy of the whole folder to B
    rss: dict[str, int]  # daemon -> bytes (VmRSS after the idle period)
    cpu: dict[str, float]  # daemon -> CPU seconds per second of idle
    restart: list[float]  # seconds from restart to up to date, nothing changed


def idle(c: Contender, sizes: Sizes, log: Callable[[str], None]) -> IdleResult:
    """Scenario 8 on a started contender with empty folders."""
    files = {
        f"idle/d{i // 1000:03}/f{i:06}": os.urandom(sizes.idle_bytes)
        for i in range(sizes.idle_files)
    }
    start = time.perf_counter()
    _write_all(c.a, files)
    c.after_change()
    expect = _exp(c, files)
    poll(expect.done, f"{c.name}: {len(files)} files on B", 3600, 0.5)
    sync_seconds = time.perf_counter() - start
    settle(c, sizes.quiet, timeout=1800)
    time.sleep(min(10.0, sizes.idle_seconds))  # trailing rescans, index writes, GC
    settle(c, sizes.quiet, timeout=600)
    pids = c.daemons()
    cpu0 = {n: sum(map(cpu_seconds, ps)) for n, ps in pids.items()}
    time.sleep(sizes.idle_seconds)
    cpu = {n: (sum(map(cpu_seconds, ps)) - cpu0[n]) / sizes.idle_seconds for n, ps in pids.items()}
    rss = {n: sum(status_kib(p, "VmRSS") for p in ps) * 1024 for n, ps in pids.items()}
    log(f"  8 {c.name:13} synced in {sync_seconds:.1f} s; idle rss {rss}, cpu {cpu}")
    restarts = []
    for _ in range(sizes.repeat):
        settle(c, sizes.quiet)
        restarts.append(c.restart_a(timeout=900))
        log(f"  8 {c.name:13} restart to up to date {restarts[-1]:.2f} s")
    return IdleResult(sync_seconds, rss, cpu, restarts)


def _exp(c: Contender, files: dict[str, bytes | bytearray]) -> Expect:
    return Expect.of(c.b, files)


def _write(path: Path, data: bytes | bytearray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def _write_all(root: Path, files: dict[str, bytes | bytearray]) -> None:
    for rel, data in files.items():
        _write(root / rel, data)


def _poke(path: Path, at: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(data)
