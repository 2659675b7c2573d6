"""What the harness needs from a contender: two folders, its processes, its bytes."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.peers.proxy import Proxy
from tests.support.server import free_port

__all__ = ["Contender", "Wire", "cap_waits", "free_port", "poll", "wait_port"]


@dataclass(frozen=True)
class Wire:
    """Cumulative bytes through a contender's proxies."""

    up: int  # sent by A (to the server for syncd, to B for peer-to-peer tools)
    down: int  # received by B
    total: int  # everything, both directions, all connections

    def __sub__(self, other: Wire) -> Wire:
        return Wire(self.up - other.up, self.down - other.down, self.total - other.total)


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


_WAIT_CAP = [float("inf")]


def cap_waits(seconds: float) -> None:
    """Bound every `poll` of this process by `seconds` (the quick mode: a contender that
    stalls is reported as failed in minutes, not after the full run's generous bounds)."""
    _WAIT_CAP[0] = seconds


def poll(cond: Callable[[], bool], what: str, timeout: float, interval: float = 0.05) -> None:
    """Wait until `cond()` holds; a generous bound against hangs, not a speed check."""
    timeout = min(timeout, _WAIT_CAP[0])
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for: {what}")
        time.sleep(interval)


class Contender:
    """One tool, set up as two devices A and B on this machine."""

    name = ""  # the key in tables and results
    label = ""  # what the table shows
    has_daemon = True  # False: changes move only when the harness pushes them
    watch_children = False  # its work happens in short-lived forked processes
    quick_scenarios: set[str] | None = None  # with --quick, only these (None: all)

    def __init__(self) -> None:
        self.base: Path | None = None
        self.proxies: list[Proxy] = []
        self.extra_cpu = 0.0  # harness-run helper processes (rsync pushes)
        self.extra_rss = 0
        self.start_error = ""  # why the last start failed

    # -- to implement ------------------------------------------------------------------
    def missing(self) -> str | None:
        """Why this contender cannot run here, or None."""
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def roots(self) -> list[int]:
        """Pids of every long-lived process of this contender."""
        raise NotImplementedError

    def daemons(self) -> dict[str, list[int]]:
        """The processes of each device's daemon ({"A": [pid], ...}) for the idle figures."""
        raise NotImplementedError

    def wire(self) -> Wire:
        raise NotImplementedError

    def settled(self) -> bool:
        """Nothing left to do on either side (as the tool itself says)."""
        return True

    def restart_a(self, timeout: float) -> float:
        """Restart device A; seconds until it is up to date again."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------
    @property
    def a(self) -> Path:
        assert self.base is not None
        return self.base / "a"

    @property
    def b(self) -> Path:
        assert self.base is not None
        return self.base / "b"

    def after_change(self) -> None:
        """Called right after each change on A (rsync pushes here)."""

    def extra(self) -> dict[str, int]:
        """Cumulative figures only this contender has (syncd's chunk bytes)."""
        return {}

    def take_extra_usage(self) -> tuple[float, int]:
        out = (self.extra_cpu, self.extra_rss)
        self.extra_cpu, self.extra_rss = 0.0, 0
        return out

    def proxy(self, target: int, name: str) -> Proxy:
        p = Proxy(target, name).start()
        self.proxies.append(p)
        return p

    def start(self, base: Path) -> None:
        self.base = base
        self.a.mkdir(parents=True, exist_ok=True)
        self.b.mkdir(parents=True, exist_ok=True)
        self._start()

    def stop(self) -> None:
        try:
            self._stop()
        finally:
            for p in self.proxies:
                p.stop()
            self.proxies = []
            if self.base is not None:
                shutil.rmtree(self.base, ignore_errors=True)
