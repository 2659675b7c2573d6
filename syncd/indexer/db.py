"""The client's index: three trees (local, remote, base) and a key/value meta table (D6).

One SQLite file in the device's state dir, in WAL mode. Every write is committed when
its outermost `transaction()` ends (a write outside one commits on its own), so the
trees survive a killed process. `synchronous=NORMAL`: a power cut may lose the last
commits but never corrupts the file; losing them only makes the planner see both
sides changed to the same content, which it settles without a transfer.

The trees stay in SQLite: `get` and `get_many` read by primary key, and only `all`
builds a whole tree in memory, for the caller to use and drop (a full scan or plan).
An idle daemon over 100,000 paths therefore holds none of them, and a cycle that
touches a few paths reads a few rows.

Threads: an Index belongs to one thread at a time (the daemon's control thread). The
connection is opened with `check_same_thread=False` so it may be created on one thread
and used on another, but there is no locking: never use it from two threads at once.

Tables: `local`, `remote`, `base` (one row per path; blocks as a compact JSON list of
[id, size]), `local_blocks` ((chunk id, path) of every local file, for `find_block`),
`kept` and `kept_blocks` (files a remote delete removed, kept a while in the state
folder so their chunks can still build a file: `find_kept`), and `meta` (text values).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, get_args

from syncd.indexer.state import Block, FileState

__all__ = [
    "SCHEMA_VERSION",
    "TREES",
    "Index",
    "LocalSnapshot",
    "Tree",
    "decode_blocks",
    "encode_blocks",
]

Tree = Literal["local", "remote", "base"]
TREES: tuple[str, ...] = get_args(Tree)
SCHEMA_VERSION = 1

_COLUMNS = "path, kind, size, mode, mtime_ns, inode, rev, blocks"
_TREE_DDL = """CREATE TABLE IF NOT EXISTS {name} (
    path TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL,
    mode INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER,
    rev INTEGER,
    blocks TEXT NOT NULL
)"""
_SCHEMA = [
    *(_TREE_DDL.format(name=tree) for tree in TREES),
    "CREATE INDEX IF NOT EXISTS local_inode ON local (inode)",
    "CREATE TABLE IF NOT EXISTS local_blocks (id TEXT NOT NULL, path TEXT NOT NULL,"
    " PRIMARY KEY (id, path)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS kept (name TEXT PRIMARY KEY, size INTEGER NOT NULL,"
    " at REAL NOT NULL, blocks TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS kept_blocks (id TEXT NOT NULL, name TEXT NOT NULL,"
    " PRIMARY KEY (id, name)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS kept_blocks_name ON kept_blocks (name)",
]

_Row = tuple[str, str, int, int, int, int | None, int | None, str]
_IN_BATCH = 500  # paths per `IN (...)` query (SQLite allows 32,766 parameters)
# A big file's block list (a 100 MiB file has ~1,300 blocks) is decoded once per cycle,
# not once per lookup: rebuilding a file from local copies asks for it per chunk.
_BIG_BLOCKS = 4096  # characters of JSON; shorter lists are cheaper to decode than to cache
_BIG_KEPT = 8  # big block lists kept until `drop_caches`


def encode_blocks(blocks: Iterable[Block]) -> str:
    """Blocks as compact JSON: '[["<id>",<size>],...]'."""
    items = []
    for b in blocks:
        if b.id.isascii() and b.id.isalnum() and type(b.size) is int:
            items.append(f'["{b.id}",{b.size}]')  # the common case, without json's overhead
        else:
            items.append(json.dumps([b.id, b.size], separators=(",", ":")))
    return "[" + ",".join(items) + "]"


def decode_blocks(text: str) -> tuple[Block, ...]:
    if text == "[]":
        return ()
    return tuple([Block(i, s) for i, s in json.loads(text)])


def _row(state: FileState) -> _Row:
    return (
        state.path,
        state.kind,
        state.size,
        state.mode,
        state.mtime_ns,
        state.inode,
        state.rev,
        encode_blocks(state.blocks),
    )


def _state(row: _Row, blocks: tuple[Block, ...] | None = None) -> FileState:
    path, kind, size, mode, mtime_ns, inode, rev, text = row
    if blocks is None:
        blocks = decode_blocks(text)
    # positional, in FileState's field order: path kind size mode mtime_ns blocks rev inode
    return FileState(path, kind, size, mode, mtime_ns, blocks, rev, inode)


def _by_id(key: tuple[str, str]) -> str:
    return key[0]


def _storable(path: str) -> bool:
    """False for a name no table can hold: one with undecodable bytes (surrogate
    escapes), which the scanner reports as a problem and never stores."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _tree(tree: str) -> str:
    if tree not in TREES:
        raise ValueError(f"unknown tree {tree!r}; expected one of {TREES}")
    return tree


class Index:
    """The three trees and the meta table of one sync folder."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        """Wrap an open connection (autocommit: `isolation_level=None`); see `open`."""
        self.conn = conn
        self._savepoints = 0
        self._big: dict[str, tuple[Block, ...]] = {}  # JSON text -> decoded big block list
        self._big_offsets: dict[str, dict[str, tuple[int, int]]] = {}  # and where each id is
        with self.transaction():
            for statement in _SCHEMA:
                conn.execute(statement)
            if self.get_meta("schema") is None:
                self.set_meta("schema", SCHEMA_VERSION)

    @classmethod
    def open(cls, path: str | Path) -> Index:
        """Open (creating if needed) the index file at `path`; its folder must exist.

        A new file is created readable by its owner only (SQLite gives its -wal and -shm
        files the same mode): the index lists every file name and chunk id."""
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        # KiB: 8 MiB of pages serve the lookups by path, inode and chunk id; it is part
        # of the idle daemon's RSS, so it stays small (the trees are read by primary key).
        conn.execute("PRAGMA cache_size = -8192")
        return cls(conn)

    def close(self) -> None:
        self.conn.close()
        self.drop_caches()

    def drop_caches(self) -> None:
        """Forget the decoded big block lists (the sync loop calls this after each cycle,
        so an idle daemon keeps none)."""
        self._big.clear()
        self._big_offsets.clear()

    def _state(self, row: _Row) -> FileState:
        return _state(row, self._blocks(row[7]))

    def _blocks(self, text: str) -> tuple[Block, ...]:
        if len(text) < _BIG_BLOCKS:
            return decode_blocks(text)
        blocks = self._big.get(text)
        if blocks is None:
            if len(self._big) >= _BIG_KEPT:
                oldest = next(iter(self._big))
                del self._big[oldest]
                self._big_offsets.pop(oldest, None)
            blocks = self._big[text] = decode_blocks(text)
        return blocks

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all; nested blocks are savepoints
        (a nested block that fails rolls back its own writes only)."""
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN")
            try:
                yield
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.rollback()
                raise
            return
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            if self.conn.in_transaction:  # an error may have ended the whole transaction
                self.conn.execute(f"ROLLBACK TO {name}")
                self.conn.execute(f"RELEASE {name}")
            raise
        else:
            self.conn.execute(f"RELEASE {name}")
        finally:
            self._savepoints -= 1

    @contextmanager
    def _writing(self) -> Iterator[None]:
        if self.conn.in_transaction:
            yield
        else:
            with self.transaction():
                yield

    # -- trees -------------------------------------------------------------------------
    def get(self, tree: Tree, path: str) -> FileState | None:
        if not _storable(path):
            return None
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM {_tree(tree)} WHERE path = ?", (path,)
        ).fetchone()
        return None if row is None else self._state(row)

    def get_many(self, tree: Tree, paths: Iterable[str]) -> dict[str, FileState]:
        """The states of those of `paths` that are in the tree, by path."""
        return {row[0]: self._state(row) for row in self._rows_in(tree, _COLUMNS, paths)}

    def kinds_many(self, tree: Tree, paths: Iterable[str]) -> dict[str, str]:
        """The kind ("file" or "dir") of those of `paths` that are in the tree, by path:
        `get_many` without decoding block lists, for callers that only need to know
        what a path is."""
        return dict(self._rows_in(tree, "path, kind", paths))

    def _rows_in(self, tree: Tree, columns: str, paths: Iterable[str]) -> Iterator[Any]:
        """`columns` of the rows of those of `paths` in the tree, `_IN_BATCH` at a time."""
        table = _tree(tree)
        wanted = [p for p in dict.fromkeys(paths) if _storable(p)]
        for start in range(0, len(wanted), _IN_BATCH):
            batch = wanted[start : start + _IN_BATCH]
            marks = ",".join("?" * len(batch))
            yield from self.conn.execute(
                f"SELECT {columns} FROM {table} WHERE path IN ({marks})", batch
            ).fetchall()

    def all(self, tree: Tree) -> dict[str, FileState]:
        """Every state of one tree, by path, read from SQLite (a fresh dict: the caller
        may change it, and it is garbage once the caller drops it)."""
        rows = self.conn.execute(f"SELECT {_COLUMNS} FROM {_tree(tree)}")
        gc_was_on = gc.isenabled()
        gc.disable()  # 100k objects in a row would trigger needless collections
        try:
            return {row[0]: _state(row) for row in rows}
        finally:
            if gc_was_on:
                gc.enable()

    def unsettled(self) -> set[str]:
        """Every path the three trees may disagree on: all of them but those whose local
        and base states hold the same content (kind; for a file, the block list and the
        executable bit, as `FileState.same_content`) and whose remote state has the
        base's revision. For those the planner decides nothing, so a full plan needs
        only the rest. SQLite answers from the stored columns, without decoding a state:
        a restart over 100,000 settled files spent 4.7 s decoding three trees only for
        the planner to find nothing to do. A block list stored in another spelling, or
        a revision that is NULL on both sides, only makes a path look unsettled."""
        rows = self.conn.execute(
            "SELECT b.path FROM base AS b LEFT JOIN local AS l ON l.path = b.path"
            " LEFT JOIN remote AS r ON r.path = b.path"
            " WHERE NOT coalesce(l.kind = b.kind AND r.rev = b.rev AND (l.kind = 'dir'"
            " OR (l.blocks = b.blocks AND (l.mode & 64) = (b.mode & 64))), 0)"
            " UNION ALL SELECT path FROM local AS x"
            " WHERE NOT EXISTS (SELECT 1 FROM base WHERE base.path = x.path)"
            " UNION ALL SELECT path FROM remote AS x"
            " WHERE NOT EXISTS (SELECT 1 FROM base WHERE base.path = x.path)"
        )  # every base path unless settled, and the paths base does not have
        return {r[0] for r in rows}

    def count(self, tree: Tree) -> int:
        return self.conn.execute(f"SELECT count(*) FROM {_tree(tree)}").fetchone()[0]

    def has(self, tree: Tree, path: str) -> bool:
        """Whether the tree holds `path` (without decoding its state)."""
        if not _storable(path):
            return False
        query = f"SELECT 1 FROM {_tree(tree)} WHERE path = ?"
        return self.conn.execute(query, (path,)).fetchone() is not None

    def is_empty(self, tree: Tree) -> bool:
        return self.conn.execute(f"SELECT 1 FROM {_tree(tree)} LIMIT 1").fetchone() is None

    def put(self, tree: Tree, state: FileState) -> None:
        self.put_many(tree, (state,))

    def put_many(self, tree: Tree, states: Iterable[FileState]) -> None:
        """Insert or replace states; one statement per table (executemany)."""
        table = _tree(tree)
        new = {s.path: s for s in states}
        if not new:
            return
        with self._writing():
            if tree == "local":
                old = self.get_many("local", new)
                self._reindex_blocks([(old.get(p), s) for p, s in new.items()])
            self.conn.executemany(
                f"INSERT OR REPLACE INTO {table} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [_row(s) for s in new.values()],
            )

    def delete(self, tree: Tree, path: str) -> None:
        self.delete_many(tree, (path,))

    def delete_many(self, tree: Tree, paths: Iterable[str]) -> None:
        table = _tree(tree)
        gone = [p for p in dict.fromkeys(paths) if _storable(p)]
        if not gone:
            return
        with self._writing():
            if tree == "local":
                self._reindex_blocks([(s, None) for s in self.get_many("local", gone).values()])
            self.conn.executemany(f"DELETE FROM {table} WHERE path = ?", [(p,) for p in gone])

    def clear(self, tree: Tree) -> None:
        """Forget every state of one tree (e.g. before a full resync of `remote`)."""
        with self._writing():
            self.conn.execute(f"DELETE FROM {_tree(tree)}")
            if tree == "local":
                self.conn.execute("DELETE FROM local_blocks")

    def _reindex_blocks(self, changes: list[tuple[FileState | None, FileState | None]]) -> None:
        """Keep local_blocks in step with (old, new) local states; sorted for fast B-trees."""
        drop: set[tuple[str, str]] = set()
        add: set[tuple[str, str]] = set()
        for old, new in changes:
            if old is not None and new is not None and old.blocks == new.blocks:
                continue
            if old is not None:
                drop.update((b.id, old.path) for b in old.blocks)
            if new is not None:
                add.update((b.id, new.path) for b in new.blocks)
        keep = drop & add
        if drop - keep:
            self.conn.executemany(
                "DELETE FROM local_blocks WHERE id = ? AND path = ?",
                sorted(drop - keep, key=_by_id),
            )
        if add - keep:
            self.conn.executemany(
                "INSERT OR IGNORE INTO local_blocks (id, path) VALUES (?, ?)",
                sorted(add - keep, key=_by_id),
            )

    def paths_under(self, tree: Tree, folder: str) -> list[str]:
        """Sorted paths strictly inside `folder` ('' is the root: every path)."""
        table = _tree(tree)
        if not _storable(folder):
            return []
        if folder == "":
            rows = self.conn.execute(f"SELECT path FROM {table} ORDER BY path")
        else:
            # '/' sorts right before '0': [folder/, folder0) is exactly folder's subtree
            rows = self.conn.execute(
                f"SELECT path FROM {table} WHERE path >= ? AND path < ? ORDER BY path",
                (folder + "/", folder + "0"),
            )
        return [r[0] for r in rows]

    def paths_containing(self, tree: Tree, text: str) -> list[str]:
        """Sorted paths that contain `text`, read from the table (not the mirror), so a
        second connection sees what the sync loop's connection has committed."""
        table = _tree(tree)
        rows = self.conn.execute(
            f"SELECT path FROM {table} WHERE instr(path, ?) > 0 ORDER BY path", (text,)
        )
        return [r[0] for r in rows]

    # -- lookups for reuse -------------------------------------------------------------
    def find_local_by_inode(self, inode: int) -> FileState | None:
        row = self.conn.execute(f"SELECT {_COLUMNS} FROM local WHERE inode = ? LIMIT 1", (inode,))
        found = row.fetchone()
        return None if found is None else self._state(found)

    def find_local_file(self, inode: int, size: int, mtime_ns: int) -> FileState | None:
        """A local file with this (inode, size, mtime_ns): the same bytes under some path."""
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM local WHERE inode = ? AND size = ? AND mtime_ns = ?"
            " AND kind = 'file' LIMIT 1",
            (inode, size, mtime_ns),
        ).fetchone()
        return None if row is None else self._state(row)

    def local_snapshot(self) -> LocalSnapshot:
        """The local tree for a partial rescan, read path by path (see `scan`)."""
        return LocalSnapshot(self)

    def find_block(self, block_id: str) -> tuple[str, int, int] | None:
        """(path, offset, size) of a chunk inside a local file that matches its base.

        Only files whose last scan agrees with the synced base are offered: their bytes
        are settled. The reader must still verify the chunk's hash (the file may have
        changed since it was scanned).
        """
        return self.find_blocks([block_id]).get(block_id)

    def find_blocks(self, block_ids: Iterable[str]) -> dict[str, tuple[str, int, int]]:
        """`find_block` for many chunks: chunk id -> (path, offset, size) of those found.

        One query per batch of ids finds the files holding them; each such file is then
        checked against its base and its block list walked once, however many of its
        chunks are asked for (rebuilding a 100 MiB file asks for ~1,300)."""
        wanted = list(dict.fromkeys(block_ids))
        holders: dict[str, list[str]] = {}
        for start in range(0, len(wanted), _IN_BATCH):
            batch = wanted[start : start + _IN_BATCH]
            marks = ",".join("?" * len(batch))
            for block_id, path in self.conn.execute(
                f"SELECT id, path FROM local_blocks WHERE id IN ({marks})", batch
            ):
                holders.setdefault(block_id, []).append(path)
        settled: dict[str, dict[str, tuple[int, int]] | None] = {}
        found: dict[str, tuple[str, int, int]] = {}
        for block_id in wanted:
            for path in holders.get(block_id, ()):
                if path not in settled:
                    settled[path] = self._settled_offsets(path)
                where = (settled[path] or {}).get(block_id)
                if where is not None:
                    found[block_id] = (path, *where)
                    break
        return found

    def _settled_offsets(self, path: str) -> dict[str, tuple[int, int]] | None:
        """The chunk offsets of local file `path` if its scan agrees with its base."""
        row = self.conn.execute(
            "SELECT l.blocks FROM local AS l JOIN base AS b ON b.path = l.path"
            " WHERE l.path = ? AND l.kind = 'file' AND b.kind = 'file' AND l.blocks = b.blocks",
            (path,),
        ).fetchone()
        return None if row is None else self._offsets(row[0])

    def _offsets(self, text: str) -> dict[str, tuple[int, int]]:
        """Chunk id -> (offset, size) of its first place in a block list (JSON text);
        kept with the decoded list when the list is big."""
        found = self._big_offsets.get(text)
        if found is not None:
            return found
        found = {}
        offset = 0
        for block in self._blocks(text):
            found.setdefault(block.id, (offset, block.size))
            offset += block.size
        if len(text) >= _BIG_BLOCKS:
            self._big_offsets[text] = found
        return found

    # -- kept files --------------------------------------------------------------------
    def keep(self, name: str, state: FileState, at: float) -> None:
        """Record a deleted file's content, kept under `name` since `at`."""
        with self._writing():
            self.conn.execute(
                "INSERT OR REPLACE INTO kept (name, size, at, blocks) VALUES (?, ?, ?, ?)",
                (name, state.size, at, encode_blocks(state.blocks)),
            )
            self.conn.executemany(
                "INSERT OR IGNORE INTO kept_blocks (id, name) VALUES (?, ?)",
                sorted({(b.id, name) for b in state.blocks}),
            )

    def find_kept(self, block_ids: Iterable[str]) -> dict[str, tuple[str, int, int]]:
        """Chunk id -> (name, offset, size) in a kept file, for those any kept file holds
        (the file itself may be gone or changed: the reader checks the bytes)."""
        found: dict[str, tuple[str, int, int]] = {}
        if self.conn.execute("SELECT 1 FROM kept LIMIT 1").fetchone() is None:
            return found  # the usual case: one cheap query
        wanted = list(dict.fromkeys(block_ids))
        offsets: dict[str, dict[str, tuple[int, int]]] = {}
        for start in range(0, len(wanted), _IN_BATCH):
            batch = wanted[start : start + _IN_BATCH]
            marks = ",".join("?" * len(batch))
            rows = self.conn.execute(
                f"SELECT kb.id, k.name, k.blocks FROM kept_blocks AS kb"
                f" JOIN kept AS k ON k.name = kb.name WHERE kb.id IN ({marks})",
                batch,
            )
            for block_id, name, blocks in rows:
                if block_id in found:
                    continue
                if name not in offsets:
                    offsets[name] = self._offsets(blocks)
                where = offsets[name].get(block_id)
                if where is not None:
                    found[block_id] = (name, *where)
        return found

    def kept_names(self) -> set[str]:
        return {row[0] for row in self.conn.execute("SELECT name FROM kept")}

    def expire_kept(self, before: float, max_bytes: int) -> list[str]:
        """Forget kept files recorded before `before`, and the oldest beyond `max_bytes`
        in all; their names (the caller removes the files)."""
        rows = self.conn.execute("SELECT name, size, at FROM kept ORDER BY at DESC, name")
        total, gone = 0, []
        for name, size, at in rows.fetchall():
            total += size
            if at < before or total > max_bytes:
                gone.append(name)
        self.forget_kept(gone)
        return gone

    def forget_kept(self, names: Iterable[str]) -> None:
        gone = [(n,) for n in names]
        if not gone:
            return
        with self._writing():
            self.conn.executemany("DELETE FROM kept WHERE name = ?", gone)
            self.conn.executemany("DELETE FROM kept_blocks WHERE name = ?", gone)

    # -- meta --------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else str(row[0])

    def set_meta(self, key: str, value: str | int | None) -> None:
        """Store `value` as text (ints in decimal: read back with int()); None removes it."""
        with self._writing():
            if value is None:
                self.conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                self.conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(value))
                )


class LocalSnapshot:
    """The local tree as the scanner asks for it (`syncd.indexer.scanner.Snapshot`),
    answered by queries: a rescan of a few paths reads a few rows, not 100,000."""

    def __init__(self, index: Index) -> None:
        self._index = index

    def get(self, path: str) -> FileState | None:
        return self._index.get("local", path)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self._index.has("local", path)

    def within(self, scope: str) -> list[str]:
        """`scope` (if it is a state) and every path below it; '' is every path."""
        below = self._index.paths_under("local", scope)
        return below if scope == "" or scope not in self else [scope, *below]

    def donor(self, inode: int, size: int, mtime_ns: int) -> FileState | None:
        return self._index.find_local_file(inode, size, mtime_ns)
