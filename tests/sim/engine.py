"""In-process devices: the real engine (SyncLoop, Executor, LocalFS, Index, ServerClient)
on real folders against a real server, driven by one thread with a fake clock.

Each device's loop is driven through `SyncLoop.tick()`, the daemon's own loop pass;
its timers (settle and retry delays) and its clock are virtual, so a seed replays the
same schedule. Every call into the server and every LocalFS write passes a hook where
the scheduler may, at random, let the user edit that device's folder mid-cycle, run
another device's whole cycle (a real interleaving at the server), cut this device's
network, or crash it: a `SimCrash` raised from the hook unwinds the engine as a killed
process would stop it (whatever was written to disk or committed stays; the index's
open transaction is rolled back), and the device is later restarted on the same
folder and index.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from syncd.chunker import ChunkParams, chunk_file
from syncd.engine.localfs import LocalFS
from syncd.engine.loop import SyncLoop
from syncd.indexer.db import Index
from syncd.indexer.state import FileState
from syncd.status import SyncStatus
from syncd.transport.client import ServerClient
from syncd.transport.retry import Backoff
from tests.sim.model import Ledger
from tests.support.faultproxy import FaultProxy

TODAY = date(2024, 5, 1)


class SimCrash(BaseException):
    """Raised from a hook: the device's process is killed at this point."""


class VirtualTime:
    """A fake clock with timers; `advance` fires what has come due, in order."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    def timer(self, delay: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (self.now + delay, next(self._seq), callback))

    def advance(self, seconds: float) -> None:
        end = self.now + max(0.0, seconds)
        while self._timers and self._timers[0][0] <= end:
            due, _, callback = heapq.heappop(self._timers)
            self.now = max(self.now, due)
            callback()
        self.now = end

    def sleep(self, seconds: float) -> None:  # the transport's retry backoff
        self.advance(seconds)


class _Hooked:
    """Mixin: call the device's hook around the wrapped operations (driver thread only)."""

    device: SimDevice

    def _hook(self, where: str) -> None:
        if threading.current_thread() is self.device.sim.thread:
            self.device.sim.interleave(self.device, where)


class HookedClient(_Hooked, ServerClient):
    def _request(self, method: str, url: str, **kw):  # type: ignore[override]
        self._hook(f"before {method} {url.split('/')[-1]}")
        response = super()._request(method, url, **kw)
        self._hook(f"after {method} {url.split('/')[-1]}")
        return response


class HookedFS(_Hooked, LocalFS):
    """LocalFS that also tells the ledger which content each engine write replaced."""

    def _replacing(self, path: str, op: str, run: Callable[[], object]) -> object:
        full = Path(self.abspath(path))
        before = _read_file(full)
        try:
            result = run()
        finally:
            self.device.watcher_saw([path])  # inotify reports the engine's own writes too
        if before is not None and result is not False and _read_file(full) != before:
            self.device.sim.ledger.engine_replaced(
                before, f"{self.device.name}: {op} {path} at t={self.device.sim.time.now:.0f}"
            )
        return result

    def write_file(self, path, state, chunks, expect, *, sync_dir=True):  # type: ignore[override]
        self._hook(f"write {path}")
        return self._replacing(
            path, "download", lambda: LocalFS.write_file(self, path, state, chunks, expect,
                                                         sync_dir=sync_dir)
        )  # fmt: skip

    def delete(self, path: str, expect: FileState, *, keep_as: str | None = None) -> bool:
        self._hook(f"delete {path}")
        return bool(
            self._replacing(
                path, "delete", lambda: LocalFS.delete(self, path, expect, keep_as=keep_as)
            )
        )

    def mkdir(self, path, state, expect=None):  # type: ignore[override]
        self._hook(f"mkdir {path}")
        return self._replacing(path, "mkdir", lambda: LocalFS.mkdir(self, path, state, expect))

    def move_aside(self, path: str, new_path: str) -> None:
        self._hook(f"move aside {path}")
        try:
            LocalFS.move_aside(self, path, new_path)
        finally:
            self.device.watcher_saw([path, new_path])


class RecordingIndex(Index):
    """The real index; every content committed to the local tree is told to the ledger."""

    ledger: Ledger
    device_name: str

    def put_many(self, tree, states):  # type: ignore[override]
        states = list(states)
        if tree == "local":
            for s in states:
                if s.kind == "file":
                    ids = tuple(b.id for b in s.blocks)
                    self.ledger.scanned(ids, f"{self.device_name}:{s.path}")
        super().put_many(tree, states)


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if path.is_file() and not path.is_symlink() else None
    except OSError:
        return None


class SimDevice:
    """One in-process device: its folder, index file, proxy, and (while up) its engine.

    `sim` is the scenario driving it: `ledger`, `rng`, `time`, `thread`, `stats` and
    `interleave(device, where)`, the scheduler's hook."""

    def __init__(self, sim: Any, name: str, base: Path, server_port: Callable[[], int]) -> None:
        self.sim = sim
        self.name = name
        self.folder = base / name / "folder"
        self.index_path = base / name / "index.sqlite3"
        self.folder.mkdir(parents=True)
        (self.folder / ".syncd").mkdir()
        self.proxy = FaultProxy(lambda: ("127.0.0.1", server_port())).start()
        self.loop: SyncLoop | None = None
        self.index: RecordingIndex | None = None
        self.client: HookedClient | None = None
        self.token = ""
        self.ns = 0
        self.params: ChunkParams | None = None
        self.ticking = False
        self.offline_steps = 0  # driver steps left before the network comes back
        self.down_steps = 0  # driver steps left before a crashed device restarts
        self.paused_steps = 0  # driver steps left before the user resumes syncing

    @property
    def up(self) -> bool:
        return self.loop is not None

    def login(self, user: str, password: str) -> None:
        client = ServerClient(self.proxy.url)
        try:
            body = client.login(user, password, self.name)
        finally:
            client.close()
        self.token, self.ns = body["token"], body["namespace"]
        self.params = ChunkParams.from_dict(body["chunking"])

    def boot(self) -> None:
        assert self.params is not None
        index = RecordingIndex.open(self.index_path)
        index.ledger, index.device_name = self.sim.ledger, self.name
        fs = HookedFS(self.folder, self.folder / ".syncd")
        fs.device = self
        client = HookedClient(
            self.proxy.url,
            self.token,
            timeout=10,
            sleep=self.sim.time.sleep,
            backoff=Backoff(rand=self.sim.rng.random),
            # a connection per request: a cut `after` N bytes lands on the same request
            # in every replay, whatever keep-alive timing would have reused
            transport=httpx.HTTPTransport(limits=httpx.Limits(max_keepalive_connections=0)),
        )
        client.device = self
        sim = self.sim

        def chunk(path: Path, params: ChunkParams):
            if threading.current_thread() is sim.thread:
                sim.interleave(self, f"read {path.name}")
            refs = chunk_file(path, params)
            if threading.current_thread() is sim.thread:
                sim.interleave(self, f"read done {path.name}")
            return refs

        self.index, self.client = index, client
        self.loop = SyncLoop(
            root=self.folder,
            index=index,
            fs=fs,
            client=client,
            ns=self.ns,
            device=self.name,
            params=self.params,
            status=SyncStatus(folder=str(self.folder), device=self.name),
            chunk_fn=chunk,
            settle_delay=1.0,
            rescan_interval=1e9,  # no periodic rescan: it would hide a change not followed
            clock=sim.time.clock,
            today=lambda: TODAY,
            timer=sim.time.timer,
        )
        fs.cleanup_temp()  # what run() does first

    def tick(self) -> None:
        """One pass of this device's loop; a crash inside kills the device."""
        if self.loop is None or self.ticking:
            return
        self.ticking = True
        try:
            self.loop.tick()
        except SimCrash:
            self.sim.stats["crash_mid_cycle"] += 1
            self.kill()
        finally:
            self.ticking = False

    def kill(self) -> None:
        """The process dies: open transactions roll back, memory is gone."""
        if self.loop is None:
            return
        pool = self.loop.executor._threads
        if pool is not None:
            pool.shutdown(wait=True)
        assert self.index is not None and self.client is not None
        if self.index.conn.in_transaction:
            self.index.conn.rollback()
        self.index.close()
        self.client.close()
        self.loop = self.index = self.client = None
        self.down_steps = self.sim.rng.randrange(1, 8)

    def watcher_saw(self, paths: list[str]) -> None:
        """The engine changed these paths: the daemon's watcher would report them."""
        self.post_dirty(paths)  # a queue: safe from the executor's threads too

    def post_dirty(self, paths: list[str]) -> None:
        if self.loop is not None and paths:
            self.loop.post("dirty", set(paths))

    def cursor(self) -> int:
        if self.index is None:
            return -1
        return int(self.index.get_meta("cursor") or 0)

    def settled(self) -> bool:
        """Nothing left to do: all three trees agree."""
        assert self.index is not None
        local, remote, base = (self.index.all(t) for t in ("local", "remote", "base"))
        if set(local) != set(base) or set(remote) != set(base):
            return False
        return all(base[p].same_content(local[p]) and remote[p].rev == base[p].rev for p in base)

    def close(self) -> None:
        self.kill()
        self.proxy.stop()
