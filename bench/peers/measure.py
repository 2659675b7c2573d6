"""One measured change: time until B is byte-identical, then bytes, CPU and RSS until
the contender has settled. The same code measures every contender."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import blake3

from bench.peers.contenders.base import Contender, poll
from bench.peers.procs import Meter, wait_quiet


def digest(data: bytes | bytearray) -> bytes:
    return blake3.blake3(data, max_threads=blake3.blake3.AUTO).digest()


MMAP_FROM = 16 << 20  # files this big are hashed mapped, on every core
_READ_BUF = threading.local()


def file_digest(path: Path) -> bytes:
    """blake3 of the file at `path`. Small files are read into one buffer this thread
    keeps: mapping each one cost a page fault per 4 KiB, and checking B's 2,000 files of
    scenario 5 took the harness 0.37 CPU-seconds that way against 0.09 read, while the
    contender's processes wanted the same two cores."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if os.fstat(fd).st_size >= MMAP_FROM:
            h = blake3.blake3(max_threads=blake3.blake3.AUTO)
            h.update_mmap(path)
            return h.digest()
        buf = getattr(_READ_BUF, "view", None)
        if buf is None:
            buf = _READ_BUF.view = memoryview(bytearray(1 << 20))
        h = blake3.blake3()
        while n := os.readv(fd, [buf]):
            h.update(buf[:n])
        return h.digest()
    finally:
        os.close(fd)


TOOL_DIRS = {".syncd", ".stfolder", ".stversions"}  # each tool's own state, not user data


def tree_digest(root: Path) -> dict[str, tuple]:
    """{relative path: ("dir",) | ("file", size, digest)} of the user's files under root."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            dirnames[:] = [d for d in dirnames if d not in TOOL_DIRS]
        for d in dirnames:
            out[os.path.normpath(os.path.join(rel, d))] = ("dir",)
        for f in filenames:
            full = Path(dirpath) / f
            out[os.path.normpath(os.path.join(rel, f))] = (
                "file",
                full.stat().st_size,
                file_digest(full),
            )
    return out


@dataclass
class Expect:
    """What B's folder must hold: files (size, digest) that must match, paths that must be
    gone. A file is hashed only when its size matches and its stat changed since the last
    look, so a poll costs one stat per file still pending."""

    root: Path
    files: dict[str, tuple[int, bytes]]
    absent: list[str] = field(default_factory=list)
    _seen: dict[str, tuple] = field(default_factory=dict)

    @classmethod
    def of(cls, root: Path, files: dict[str, bytes | bytearray], absent: list[str] = ()) -> Expect:  # type: ignore[assignment]
        return cls(root, {p: (len(d), digest(d)) for p, d in files.items()}, list(absent))

    def done(self) -> bool:
        if any(os.path.lexists(self.root / p) for p in self.absent):
            return False
        for path, (size, want) in list(self.files.items()):
            try:
                st = os.stat(self.root / path)
            except OSError:
                return False
            sig = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
            if st.st_size != size or self._seen.get(path) == sig:
                return False
            if file_digest(self.root / path) != want:
                self._seen[path] = sig
                return False
            del self.files[path]
        return True


@dataclass
class Sample:
    seconds: float
    up: int  # bytes sent by A
    down: int  # bytes received by B
    wire: int  # every byte through the contender's proxies
    cpu: float  # CPU seconds of its processes
    rss: int  # peak RSS, bytes, summed over its processes
    extra: dict[str, int] = field(default_factory=dict)


def settle(c: Contender, quiet: float, timeout: float = 600.0) -> None:
    """Until the tool says it is done and its wire has been quiet for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        poll(c.settled, f"{c.name} settled", max(1.0, deadline - time.monotonic()), 0.1)
        wait_quiet(lambda: c.wire().total, quiet, max(1.0, deadline - time.monotonic()))
        if c.settled() or time.monotonic() > deadline:
            return


def measure(
    c: Contender,
    change: Callable[[], None],
    expect: Expect,
    *,
    quiet: float = 1.0,
    timeout: float = 900.0,
) -> Sample:
    settle(c, quiet)
    w0, x0 = c.wire(), c.extra()
    meter = Meter(c.roots(), watch_children=c.watch_children)
    c.take_extra_usage()
    meter.start()
    start = time.perf_counter()
    change()
    c.after_change()
    interval = 0.002 if len(expect.files) <= 10 else min(0.5, len(expect.files) * 1e-5)
    poll(expect.done, f"{c.name}: B byte-identical", timeout, interval)
    seconds = time.perf_counter() - start
    settle(c, quiet)
    usage = meter.stop()
    cpu, rss = c.take_extra_usage()
    w, x1 = c.wire() - w0, c.extra()
    return Sample(
        seconds,
        w.up,
        w.down,
        w.total,
        usage.cpu + cpu,
        usage.peak_rss + rss,
        {k: x1[k] - x0.get(k, 0) for k in x1},
    )
