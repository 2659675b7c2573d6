"""The index on real SQLite files: trees, meta, transactions, reuse lookups, scale."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from syncd.indexer.db import Index, decode_blocks, encode_blocks
from syncd.indexer.state import Block, FileState

A = Block("a" * 64, 100)
B = Block("b" * 64, 50)
C = Block("c" * 64, 7)


def f(path: str, *blocks: Block, rev: int | None = None, inode: int | None = None) -> FileState:
    return FileState(
        path, "file", sum(b.size for b in blocks), 0o644, 123, tuple(blocks), rev, inode
    )


@pytest.fixture
def index(tmp_path: Path):
    idx = Index.open(tmp_path / "index.db")
    yield idx
    idx.close()


def test_put_get_delete_each_tree(index: Index):
    for tree in ("local", "remote", "base"):
        state = f("a/b.txt", A, B, rev=None if tree == "local" else 3, inode=9)
        assert index.get(tree, "a/b.txt") is None
        index.put(tree, state)
        assert index.get(tree, "a/b.txt") == state
        index.delete(tree, "a/b.txt")
        assert index.get(tree, "a/b.txt") is None
        index.delete(tree, "a/b.txt")  # deleting what is not there is fine


def test_trees_are_separate_and_dirs_round_trip(index: Index):
    index.put("local", FileState("d", "dir", mode=0o755, inode=4))
    index.put("remote", f("d", A, rev=1))
    assert index.get("local", "d") == FileState("d", "dir", mode=0o755, inode=4)
    assert index.get("remote", "d") == f("d", A, rev=1)
    assert index.get("base", "d") is None


def test_reopen_keeps_everything(tmp_path: Path):
    with Index.open(tmp_path / "i.db") as idx:
        idx.put_many("local", [f("x", A, inode=1), FileState("y", "dir")])
        idx.put("base", f("x", A, rev=5))
        idx.set_meta("cursor", 42)
    with Index.open(tmp_path / "i.db") as idx:
        assert idx.all("local") == {"x": f("x", A, inode=1), "y": FileState("y", "dir")}
        assert idx.get("base", "x") == f("x", A, rev=5)
        assert int(idx.get_meta("cursor") or 0) == 42


def test_wal_mode(index: Index):
    assert index.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unknown_tree_is_refused(index: Index):
    with pytest.raises(ValueError, match="unknown tree"):
        index.get("elsewhere", "a")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown tree"):
        index.put("local; DROP TABLE meta", f("a", A))  # type: ignore[arg-type]


def test_all_returns_a_copy(index: Index):
    index.put("local", f("a", A))
    snapshot = index.all("local")
    snapshot.pop("a")
    assert index.get("local", "a") == f("a", A)


def test_clear(index: Index):
    index.put_many("local", [f("a", A), f("b", B)])
    index.put("base", f("a", A, rev=1))
    index.clear("local")
    assert index.all("local") == {}
    assert index.find_block(A.id) is None
    assert index.get("base", "a") is not None


def test_transaction_commits_remote_entries_and_cursor_together(tmp_path: Path):
    with Index.open(tmp_path / "i.db") as idx:
        with pytest.raises(RuntimeError), idx.transaction():
            idx.put("remote", f("a", A, rev=1))
            idx.set_meta("cursor", 1)
            raise RuntimeError("connection lost mid-page")
        assert idx.get("remote", "a") is None  # the mirror was rolled back too
        assert idx.get_meta("cursor") is None
        with idx.transaction():
            idx.put("remote", f("a", A, rev=1))
            idx.set_meta("cursor", 1)
    with Index.open(tmp_path / "i.db") as idx:
        assert idx.get("remote", "a") == f("a", A, rev=1)
        assert idx.get_meta("cursor") == "1"


def test_nested_transaction_rolls_back_only_itself(index: Index):
    with index.transaction():
        index.put("base", f("outer", A, rev=1))
        with pytest.raises(KeyError), index.transaction():
            index.put("base", f("inner", B, rev=2))
            raise KeyError("inner fails")
        index.put("base", f("after", C, rev=3))
    assert sorted(index.all("base")) == ["after", "outer"]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_survives_a_killed_process(tmp_path: Path):
    db = tmp_path / "i.db"
    code = f"""
import os, signal
from syncd.indexer.db import Index
from syncd.indexer.state import Block, FileState
idx = Index.open({str(db)!r})
with idx.transaction():
    idx.put("remote", FileState("kept", "file", 3, blocks=(Block("ab" * 32, 3),), rev=7))
    idx.set_meta("cursor", 7)
idx.conn.execute("BEGIN")
idx.put("remote", FileState("lost", "file"))
idx.set_meta("cursor", 8)
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = _run(code)
    assert proc.returncode == -9, proc.stderr
    with Index.open(db) as idx:
        assert idx.get("remote", "kept") == FileState(
            "kept", "file", 3, blocks=(Block("ab" * 32, 3),), rev=7
        )
        assert idx.get("remote", "lost") is None
        assert idx.get_meta("cursor") == "7"


def test_meta(index: Index):
    assert index.get_meta("device") is None
    assert index.get_meta("device", "laptop") == "laptop"
    index.set_meta("device", "desk")
    index.set_meta("namespace", 12)
    assert index.get_meta("device") == "desk"
    assert index.get_meta("namespace") == "12"
    index.set_meta("device", None)
    assert index.get_meta("device") is None
    assert index.get_meta("schema") == "1"


def test_paths_under(index: Index):
    names = ["a", "a/b", "a/b/c", "a b", "a.txt", "a0", "ab", "a/z", "b"]
    index.put_many("base", [f(n, A, rev=1) for n in names])
    assert index.paths_under("base", "a") == ["a/b", "a/b/c", "a/z"]
    assert index.paths_under("base", "a/b") == ["a/b/c"]
    assert index.paths_under("base", "") == sorted(names)
    assert index.paths_under("base", "missing") == []


def test_find_local_by_inode(index: Index):
    index.put_many("local", [f("x", A, inode=11), f("y", B, inode=12)])
    found = index.find_local_by_inode(12)
    assert found is not None
    assert found.path == "y"
    assert index.find_local_by_inode(99) is None
    index.delete("local", "y")
    assert index.find_local_by_inode(12) is None


def test_find_block_only_in_files_that_match_their_base(index: Index):
    index.put("local", f("doc", A, B, C, inode=1))
    assert index.find_block(B.id) is None  # not synced yet: not a settled source
    index.put("base", f("doc", A, B, C, rev=4))
    assert index.find_block(B.id) == ("doc", A.size, B.size)
    assert index.find_block(C.id) == ("doc", A.size + B.size, C.size)
    assert index.find_block("f" * 64) is None
    index.put("local", f("doc", A, C, inode=1))  # edited locally: differs from base
    assert index.find_block(A.id) is None
    index.put("local", f("doc", A, B, C, inode=1))
    index.put("local", f("copy", B, inode=2))
    index.put("base", f("copy", B, rev=1))
    index.delete("local", "doc")
    assert index.find_block(B.id) == ("copy", 0, B.size)
    assert index.find_block(A.id) is None


def test_find_blocks_answers_many_ids_at_once(index: Index):
    many = [Block(f"{i:064x}", 10) for i in range(1, 1201)]  # more than one IN batch
    index.put("local", f("big", *many, inode=1))
    index.put("base", f("big", *many, rev=1))
    index.put("local", f("draft", A, B, inode=2))  # no base: not a source
    index.put("local", f("doc", B, C, inode=3))
    index.put("base", f("doc", B, C, rev=2))
    asked = [b.id for b in many] + [A.id, B.id, C.id, "f" * 64, many[0].id]
    found = index.find_blocks(asked)
    assert len(found) == 1202
    assert found[many[0].id] == ("big", 0, 10)
    assert found[many[1199].id] == ("big", 11_990, 10)
    assert found[B.id] == ("doc", 0, B.size) and found[C.id] == ("doc", B.size, C.size)
    assert A.id not in found and "f" * 64 not in found
    assert index.find_blocks([]) == {}
    assert all(index.find_block(i) == found.get(i) for i in asked)


def test_find_block_after_reopen(tmp_path: Path):
    with Index.open(tmp_path / "i.db") as idx:
        idx.put("local", f("doc", A, B, inode=1))
        idx.put("base", f("doc", A, B, rev=1))
    with Index.open(tmp_path / "i.db") as idx:
        assert idx.find_block(B.id) == ("doc", A.size, B.size)


def test_blocks_encoding():
    blocks = (A, B, Block('we"ird,id:', 3))
    text = encode_blocks(blocks)
    assert decode_blocks(text) == blocks
    assert decode_blocks(encode_blocks(())) == ()
    assert encode_blocks((A,)) == f'[["{A.id}",100]]'


def test_usable_from_another_thread(index: Index):
    errors: list[BaseException] = []

    def work() -> None:
        try:
            index.put("local", f("t", A))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert not errors
    assert index.get("local", "t") == f("t", A)


def test_hundred_thousand_paths(tmp_path: Path):
    states = [
        FileState(
            f"d{i % 97}/s{i % 13}/file{i}.txt",
            "file",
            60,
            0o644,
            i,
            (Block(f"{i:064x}", 40), Block(f"{i + 1:064x}", 20)),
            None,
            i + 1,
        )
        for i in range(100_000)
    ]
    with Index.open(tmp_path / "big.db") as idx, idx.transaction():
        idx.put_many("local", states)
        idx.put_many("base", [s.with_rev(1) for s in states[:1000]])
    with Index.open(tmp_path / "big.db") as idx:
        everything = idx.all("local")
        assert len(everything) == 100_000
        assert everything[states[12345].path] == states[12345]
        assert idx.find_block(f"{501:064x}") == (states[500].path, 40, 20)
        idx.delete_many("local", [s.path for s in states[:50_000]])
        assert len(idx.all("local")) == 50_000


def test_public_names():
    import syncd.indexer
    import syncd.indexer.db
    import syncd.indexer.ignore
    import syncd.indexer.scanner

    for module in (syncd.indexer, syncd.indexer.db, syncd.indexer.ignore, syncd.indexer.scanner):
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)


def test_get_many_is_empty_and_find_local_file(index: Index):
    index.put_many("local", [f("a", A, inode=1), f("b", B, inode=2), FileState("d", "dir")])
    assert index.get_many("local", ["a", "nope", "d", "a"]) == {
        "a": f("a", A, inode=1),
        "d": FileState("d", "dir"),
    }
    many = [f"p{i}" for i in range(1_234)]  # more than one IN (...) query's worth
    index.put_many("remote", [f(p, C, rev=1) for p in many])
    assert set(index.get_many("remote", [*many, "x"])) == set(many)
    assert index.get_many("base", many) == {}
    assert index.is_empty("base") and not index.is_empty("remote")
    assert index.has("local", "d") and not index.has("local", "nope")
    assert not index.has("base", "a")
    assert index.find_local_file(2, 50, 123) == f("b", B, inode=2)
    assert index.find_local_file(2, 51, 123) is None


def test_kinds_many_answers_kinds_without_states(index: Index):
    index.put_many("local", [f("a", A, inode=1), FileState("d", "dir")])
    assert index.kinds_many("local", ["a", "d", "nope", "a", "bad\udcff"]) == {
        "a": "file",
        "d": "dir",
    }
    many = [f"p{i}" for i in range(1_234)]  # more than one IN (...) query's worth
    index.put_many("remote", [f(p, C, rev=1) for p in many])
    assert index.kinds_many("remote", [*many, "x"]) == dict.fromkeys(many, "file")
    assert index.kinds_many("base", many) == {}


def test_local_snapshot_answers_from_the_table(index: Index):
    index.put_many("local", [FileState("d", "dir"), f("d/x", A, inode=5), f("dx", B)])
    snap = index.local_snapshot()
    assert "d/x" in snap and "d/y" not in snap
    assert snap.get("d/x") == f("d/x", A, inode=5)
    assert snap.within("d") == ["d", "d/x"]
    assert snap.within("gone") == []
    assert sorted(snap.within("")) == ["d", "d/x", "dx"]
    assert snap.donor(5, 100, 123) == f("d/x", A, inode=5)
    index.delete("local", "d/x")  # a snapshot is a view: it sees every later write
    assert snap.get("d/x") is None


def test_an_idle_index_holds_no_tree_in_memory(tmp_path: Path):
    """The trees live in SQLite: after a whole tree was read and dropped, lookups of a
    few paths keep no Python memory in proportion to the tree's size."""
    import gc
    import tracemalloc

    states = [f(f"d{i % 50}/f{i}", Block(f"{i:064x}", 9), inode=i) for i in range(20_000)]
    with Index.open(tmp_path / "big.db") as idx:
        idx.put_many("local", states)
        idx.put_many("base", [s.with_rev(1) for s in states])
        tracemalloc.start()
        try:
            assert len(idx.all("local")) == 20_000  # built and dropped at once
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            assert idx.get("base", "d7/f7") == states[7].with_rev(1)
            assert len(idx.get_many("local", [s.path for s in states[:100]])) == 100
            idx.put("local", f("d1/new", A, inode=99_999))
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    # the 20,000 states took megabytes; what stays is a few cached statements
    assert kept < 200_000


def test_undecodable_names_are_simply_not_there(index: Index):
    """A name with undecodable bytes (a surrogate escape) is never stored; asking for it
    (a watcher event, a rescan scope) finds nothing instead of failing the cycle."""
    odd = "bad\udcffname.txt"
    index.put("local", f("ok", A))
    snap = index.local_snapshot()
    assert index.get("local", odd) is None
    assert index.get_many("local", [odd, "ok"]) == {"ok": f("ok", A)}
    assert index.paths_under("local", odd) == []
    assert odd not in snap and snap.get(odd) is None and snap.within(odd) == []
    index.delete_many("local", [odd, "ok"])
    assert index.is_empty("local")


def test_a_big_block_list_is_decoded_once_until_caches_are_dropped(index: Index):
    """Rebuilding a 100 MiB file from local copies looks its state up once per chunk:
    its ~1,300 blocks are decoded once, not 1,300 times."""
    blocks = tuple(Block(f"{i:064x}", 100) for i in range(200))
    index.put_many("local", [f("big", *blocks, inode=1), f("small", A, inode=2)])
    first, again = index.get("local", "big"), index.get("local", "big")
    assert first == again == f("big", *blocks, inode=1)
    assert first is not None and again is not None and first.blocks is again.blocks
    assert index.find_block(blocks[7].id) is None  # no base yet: not offered
    index.put("base", f("big", *blocks, rev=1))
    assert index.find_block(blocks[7].id) == ("big", 700, 100)
    assert index.find_block(blocks[199].id) == ("big", 19_900, 100)
    index.drop_caches()
    later = index.get("local", "big")
    assert later is not None and later.blocks == first.blocks and later.blocks is not first.blocks
    assert index.get("local", "small").blocks is not index.get("local", "small").blocks  # type: ignore[union-attr]


def test_unsettled_names_the_paths_that_differ(index: Index):
    d = FileState("d", "dir", 0, 0o755, 0, (), None, None)
    index.put_many("local", [f("same", A), f("edited", B), f("local-only", A), d])
    index.put_many("base", [f("same", A, rev=3), f("edited", A, rev=3), d.with_rev(1)])
    index.put_many("remote", [f("same", A, rev=3), f("edited", A, rev=3), d.with_rev(1)])
    index.put_many("remote", [f("remote-new", C, rev=9)])
    assert index.unsettled() == {"edited", "local-only", "remote-new"}
    index.put("remote", f("same", A, rev=4))  # another device committed it again
    index.put("local", FileState("d", "dir", 0, 0o700, 5, (), None, None))  # a dir's mode
    assert index.unsettled() == {"edited", "local-only", "remote-new", "same"}
    exe = FileState("edited", "file", 100, 0o755, 123, (A,), None, None)
    index.put("local", exe)  # the content of the base, but now executable
    assert "edited" in index.unsettled()
    index.put("base", exe.with_rev(3))
    assert "edited" not in index.unsettled()
    assert index.count("local") == 4 and index.count("remote") == 4


def test_unsettled_is_exactly_where_the_planner_acts(index: Index):
    """Random trees: a path left out of `unsettled` is one the planner decides nothing
    for, and every path it decides something for is in it."""
    import random

    from syncd.engine.planner import _decide

    rng = random.Random(7)
    blocks = [(), (A,), (A, B), (C,)]

    def state(path: str, rev: int | None) -> FileState | None:
        pick = rng.random()
        if pick < 0.2:
            return None
        if pick < 0.3:
            return FileState(path, "dir", 0, rng.choice([0o755, 0o700]), 0, (), rev, None)
        bl = rng.choice(blocks)
        mode = rng.choice([0o644, 0o755, 0o600])
        size = sum(b.size for b in bl)
        return FileState(path, "file", size, mode, rng.randrange(3), bl, rev, None)

    def like(st: FileState | None, rev: int) -> FileState | None:
        return None if st is None else st.with_rev(rev)

    # as the trees hold them: a scanned local state has no revision, base and remote do
    trees: dict[str, dict[str, FileState]] = {"local": {}, "remote": {}, "base": {}}
    for i in range(3000):
        path = f"p{i}"
        lo = state(path, None)
        ba = like(lo, 1) if lo is not None and rng.random() < 0.5 else state(path, 1)
        re = ba if ba is not None and rng.random() < 0.5 else state(path, rng.choice([1, 2]))
        for tree, st in (("local", lo), ("base", ba), ("remote", re)):
            if st is not None:
                trees[tree][path] = st
    for tree, states in trees.items():
        index.put_many(tree, states.values())
    acted = set()
    for i in range(3000):
        path = f"p{i}"
        lo, re, ba = (trees[t].get(path) for t in ("local", "remote", "base"))
        if (lo, re, ba) != (None, None, None) and _decide(path, lo, re, ba) is not None:
            acted.add(path)
    assert index.unsettled() == acted
    assert len(acted) > 500  # the trees are mixed enough to mean something


def test_kept_files_are_found_by_chunk_and_expire_by_age_and_size(index: Index):
    assert index.find_kept([A.id]) == {}
    index.keep("k1", f("x", A, B), at=10.0)
    index.keep("k2", f("y", C, A), at=20.0)
    found = index.find_kept([A.id, B.id, C.id, "d" * 64])
    assert found[B.id] == ("k1", 100, 50) and found[C.id] == ("k2", 0, 7)
    assert found[A.id] in {("k1", 0, 100), ("k2", 7, 100)} and len(found) == 3
    assert index.kept_names() == {"k1", "k2"}
    assert index.expire_kept(before=0.0, max_bytes=10**9) == []
    assert index.expire_kept(before=0.0, max_bytes=150) == ["k1"]  # the oldest past the cap
    assert index.find_kept([B.id]) == {} and index.kept_names() == {"k2"}
    assert index.expire_kept(before=25.0, max_bytes=10**9) == ["k2"]  # past its time
    assert index.kept_names() == set() and index.find_kept([A.id, C.id]) == {}
