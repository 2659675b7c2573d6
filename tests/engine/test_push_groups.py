"""Uploads are committed in groups (a pipeline), in the planner's order."""

from __future__ import annotations

from syncd.engine import executor
from syncd.engine.ops import DeleteRemote, Upload
from syncd.indexer.state import FileState


def _up(path: str, size: int) -> Upload:
    return Upload(path, FileState(path, "file", size), parent_rev=None)


def test_groups_keep_order_and_close_at_the_byte_bound(monkeypatch):
    monkeypatch.setattr(executor, "COMMIT_GROUP_BYTES", 100)
    ops = [
        _up("a", 60),
        DeleteRemote("gone", parent_rev=3, kind="file"),
        _up("b", 50),
        _up("c", 10),
        _up("d", 200),
        _up("e", 1),
    ]
    groups = list(executor._groups(ops))
    assert [[op.path for op in g] for g in groups] == [["a", "gone", "b"], ["c", "d"], ["e"]]
    assert [op for g in groups for op in g] == ops
