"""syncd: its server and two daemons on 127.0.0.1, each daemon behind its own proxy."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import syncd as syncd_pkg
from bench.peers.contenders.base import Contender, Wire, poll
from tests.support.devices import DeviceProc
from tests.support.server import ServerProc


class Syncd(Contender):
    name = "syncd"
    label = "syncd"

    def __init__(self) -> None:
        super().__init__()
        self.server: ServerProc | None = None
        self.devs: list[DeviceProc] = []

    def missing(self) -> str | None:
        return None

    def version(self) -> str:
        return syncd_pkg.__version__

    @property
    def a(self) -> Path:
        assert self.base is not None
        return self.base / "A" / "folder"  # DeviceProc's folder under its base

    @property
    def b(self) -> Path:
        assert self.base is not None
        return self.base / "B" / "folder"

    def _start(self) -> None:
        assert self.base is not None
        self.server = ServerProc(self.base / "server", chunking=None).start()
        self.server.adduser("bench")
        self.pa = self.proxy(self.server.port, "A<->server")
        self.pb = self.proxy(self.server.port, "B<->server")
        for name, p in (("A", self.pa), ("B", self.pb)):
            via = SimpleNamespace(url=f"http://127.0.0.1:{p.port}", ca=None)
            dev = DeviceProc(f"bench-{name}", via, base=self.base / name)  # type: ignore[arg-type]
            dev.base.mkdir(parents=True, exist_ok=True)
            dev.link("bench")
            dev.start()
            self.devs.append(dev)

    def _stop(self) -> None:
        for d in self.devs:
            d.stop()
        if self.server is not None:
            self.server.stop()
        self.devs, self.server = [], None  # a start after a failed one begins afresh

    def roots(self) -> list[int]:
        procs = [self.server.proc if self.server else None] + [d.proc for d in self.devs]
        return [p.pid for p in procs if p is not None]

    def daemons(self) -> dict[str, list[int]]:
        return {n: [d.proc.pid] for n, d in zip("AB", self.devs, strict=True) if d.proc}

    def wire(self) -> Wire:
        a, b = self.pa.snapshot(), self.pb.snapshot()
        return Wire(up=a.inbound, down=b.outbound, total=a.total + b.total)

    def extra(self) -> dict[str, int]:
        a, b = self.devs[0].status(), self.devs[1].status()
        return {
            "content_up": a["uploaded_bytes_total"],
            "content_down": b["downloaded_bytes_total"],
        }

    def settled(self) -> bool:
        return all(_up_to_date(d.status()) for d in self.devs)

    def restart_a(self, timeout: float) -> float:
        a = self.devs[0]
        a.stop()
        start, wall = time.perf_counter(), time.time()
        a.start()
        poll(lambda: _up_to_date(a.status(), since=wall), "A up to date after restart", timeout)
        return time.perf_counter() - start


def _up_to_date(st: dict, since: float = 0.0) -> bool:
    """Up to date, after a completed cycle (a fresh daemon says so before its first)."""
    return st["state"] == "up to date" and (st["last_sync"] or 0) >= since
