"""A SyncLoop over a real folder, index and server session, driven by `tick()` from a test,
and a clock for it that moves only when the test says so."""

from __future__ import annotations

from pathlib import Path

from syncd.chunker import ChunkParams
from syncd.engine.localfs import LocalFS
from syncd.engine.loop import SyncLoop
from syncd.indexer.db import Index
from syncd.status import SyncStatus
from syncd.transport.client import ServerClient


def sync_loop(root: Path, client: ServerClient, session, device: str = "b") -> SyncLoop:
    """A loop syncing `root` (created, with its state folder) into `session`'s namespace;
    its index lives beside the folder."""
    (root / ".syncd").mkdir(parents=True)
    return SyncLoop(
        root=root,
        index=Index.open(root.parent / "index.sqlite3"),
        fs=LocalFS(root, root / ".syncd"),
        client=client,
        ns=session.ns,
        device=device,
        params=ChunkParams.from_dict(session.chunking),
        status=SyncStatus(),
    )


class TestClock:
    """A loop's clock (a callable) that stands still until `t` is moved."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t
