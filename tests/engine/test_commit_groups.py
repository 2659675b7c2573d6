"""Uploads are committed a group at a time: the first files of a big batch are on the
server (and reach other devices) while the rest is still uploading."""

from __future__ import annotations

import os
from pathlib import Path

from syncd.chunker import ChunkParams, chunk_file
from syncd.engine import executor as executor_mod
from syncd.engine.executor import Executor, _commit_groups
from syncd.engine.localfs import LocalFS
from syncd.engine.ops import DeleteRemote, Upload
from syncd.indexer.db import Index
from syncd.indexer.state import Block, FileState
from syncd.transport.client import ServerClient
from tests.support.server import ServerProc

MIB = 1 << 20


def _file(path: str, *blocks: tuple[str, int]) -> Upload:
    bs = tuple(Block(c * 64, n) for c, n in blocks)
    return Upload(path, FileState(path, "file", sum(n for _, n in blocks), blocks=bs), None)


def test_groups_are_ordered_prefixes_cut_by_the_bytes_the_server_lacks(monkeypatch):
    monkeypatch.setattr(executor_mod, "COMMIT_GROUP_BYTES", 10)
    folder = Upload("d", FileState("d", "folder"), None)
    ops = [
        folder,
        _file("d/a", ("a", 6)),
        _file("d/b", ("a", 6), ("b", 6)),  # "a" was counted for d/a: 6 new bytes here
        _file("d/c", ("c", 100)),  # already on the server: costs nothing
        _file("d/e", ("e", 3)),
        DeleteRemote("old", 4, "file"),
    ]
    groups = _commit_groups(ops, missing={"a" * 64, "b" * 64, "e" * 64})
    assert [op for g in groups for op in g] == ops
    assert [[op.path for op in g] for g in groups] == [
        ["d", "d/a", "d/b"],
        ["d/c", "d/e", "old"],
    ]


def test_groups_hold_at_most_a_commit_batch_of_ops(monkeypatch):
    monkeypatch.setattr(executor_mod, "COMMIT_BATCH", 4)
    ops = [DeleteRemote(f"f{i}", 1, "file") for i in range(10)]
    assert [len(g) for g in _commit_groups(ops, set())] == [4, 4, 2]
    assert _commit_groups([], set()) == []


class Spy(ServerClient):
    """The real client; it notes, at each commit, how many chunks are still unsent."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.all_ids: list[str] = []
        self.unsent_at_commit: list[int] = []

    def commit_batch(self, ns: int, ops: list[dict]) -> list[dict]:
        self.unsent_at_commit.append(len(self.missing(ns, self.all_ids)))
        return super().commit_batch(ns, ops)


def test_a_big_batch_is_committed_while_its_later_chunks_are_still_to_be_sent(
    server: ServerProc, new_user, tmp_path: Path, monkeypatch
):
    monkeypatch.setattr(executor_mod, "COMMIT_GROUP_BYTES", 1 * MIB)
    session = new_user("laptop")
    session.client.close()
    client = Spy(server.url, session.token)
    params = ChunkParams.from_dict(session.chunking)
    root = tmp_path / "folder"
    (root / ".syncd").mkdir(parents=True)
    ops = []
    for i in range(8):
        path = root / f"f{i}.bin"
        path.write_bytes(os.urandom(MIB // 2))
        blocks = tuple(Block(r.id, r.length) for r in chunk_file(path, params))
        st = os.stat(path)
        state = FileState(path.name, "file", st.st_size, 0o644, st.st_mtime_ns, blocks)
        ops.append(Upload(path.name, state, None))
    client.all_ids = [b.id for op in ops for b in op.local.blocks]
    index = Index.open(tmp_path / "index.sqlite3")
    ex = Executor(index, LocalFS(root, root / ".syncd"), client, session.ns, "laptop")
    try:
        out = ex.run(ops)
        listed = {e["path"] for e in client.list_folder(session.ns, "")}
    finally:
        client.close()
    assert out.committed == 8 and not out.problems
    # four groups of 1 MiB: the first commit went out with three quarters still unsent
    assert len(client.unsent_at_commit) == 4
    assert client.unsent_at_commit[0] > 0 and client.unsent_at_commit[-1] == 0
    assert client.unsent_at_commit == sorted(client.unsent_at_commit, reverse=True)
    assert listed == {op.path for op in ops}
