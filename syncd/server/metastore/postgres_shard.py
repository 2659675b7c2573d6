"""One metadata shard on PostgreSQL: journals, current trees and chunk references.

A namespace's rows all live on one shard, so nothing here joins across databases.
Each namespace has a head row (`heads`): its journal's last sequence number and a
`frozen` flag. A commit takes the head's row lock first, so committers of one
namespace serialize and the sequence stays gap-free; the parent_rev checks, the
journal insert and the new head are one transaction. A frozen head (a reshard is
copying the namespace away) refuses writes, and a head that is not here means the
caller's placement is stale: both are told apart by exception so the router can react.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

import psycopg

from syncd.paths import parent_of
from syncd.server.metastore.base import CommitOp, CommitResult, Entry
from syncd.server.metastore.directory import Shard
from syncd.server.metastore.migrations import migrate
from syncd.server.metastore.postgres_pool import Database
from syncd.server.metastore.rules import (
    apply_all,
    columns,
    entry_row,
    new_entry,
    row_entry,
    vet,
)

_COLS = columns()
_JCOLS = columns("j")
_VALUES = ", ".join(["%s"] * len(_COLS.split(",")))
# Every table holding a namespace's rows, with its namespace column (for moves).
NS_TABLES = {"heads": "id", "journal": "ns", "current": "ns", "ops": "ns", "chunk_refs": "ns"}


class NotHere(LookupError):
    """This shard holds no head for the namespace: the placement used is stale."""


class Frozen(Exception):
    """The namespace is being moved off this shard: writes are refused meanwhile."""


class ShardStore:
    def __init__(self, shard: Shard) -> None:
        self.shard = shard
        migrate(shard.url, "shard")
        self.db = Database(shard.url)

    def close(self) -> None:
        self.db.close()

    # -- heads -----------------------------------------------------------------------
    def create_head(self, ns: int) -> None:
        with self.db.auto() as conn:
            conn.execute("INSERT INTO heads(id) VALUES (%s) ON CONFLICT DO NOTHING", (ns,))

    def seq(self, ns: int) -> int | None:
        with self.db.auto() as conn:
            row = conn.execute("SELECT seq FROM heads WHERE id = %s", (ns,)).fetchone()
        return row[0] if row else None

    def has(self, ns: int) -> bool:
        return self.seq(ns) is not None

    @staticmethod
    def _lock_head(conn: psycopg.Connection, ns: int, mode: str) -> int:
        row = conn.execute(
            f"SELECT seq, frozen FROM heads WHERE id = %s FOR {mode}", (ns,)
        ).fetchone()
        if row is None:
            raise NotHere(ns)
        if row[1]:
            raise Frozen(ns)
        return row[0]

    # -- chunks ----------------------------------------------------------------------
    def missing_chunks(self, ns: int, ids: Sequence[str]) -> list[str]:
        unique = list(dict.fromkeys(ids))
        with self.db.auto() as conn:
            owned = set(self._sizes(conn, ns, unique))
        return [i for i in unique if i not in owned]

    @staticmethod
    def _sizes(conn: psycopg.Connection, ns: int, ids: Sequence[str]) -> dict[str, int]:
        rows = conn.execute(
            "SELECT id, size FROM chunk_refs WHERE ns = %s AND id = ANY(%s)", (ns, list(ids))
        )
        return dict(rows.fetchall())

    def stored_chunks(self, ids: Sequence[str]) -> set[str]:
        with self.db.auto() as conn:
            rows = conn.execute(
                "SELECT DISTINCT id FROM chunk_refs WHERE id = ANY(%s)", (list(set(ids)),)
            ).fetchall()
        return {r[0] for r in rows}

    def add_chunks(self, ns: int, chunks: Sequence[tuple[str, int]]) -> None:
        with self.db.tx() as conn:
            self._lock_head(conn, ns, "SHARE")
            conn.execute(
                "INSERT INTO chunk_refs(ns, id, size)"
                " SELECT %s, c.id, c.size FROM unnest(%s::text[], %s::integer[]) AS c(id, size)"
                " ON CONFLICT DO NOTHING",
                (ns, [c for c, _ in chunks], [s for _, s in chunks]),
            )

    def owns_chunk(self, ns: int, chunk_id: str) -> int | None:
        with self.db.auto() as conn:
            return self._sizes(conn, ns, [chunk_id]).get(chunk_id)

    def stored_bytes(self, ns: int) -> int:
        with self.db.auto() as conn:
            row = conn.execute(
                "SELECT COALESCE(SUM(size), 0) FROM chunk_refs WHERE ns = %s", (ns,)
            ).fetchone()
        return int(row[0])

    # -- journal ---------------------------------------------------------------------
    def commit(
        self, ns: int, ops: Sequence[CommitOp], user: str, device: str, now: float
    ) -> list[CommitResult]:
        """All ops in one transaction and a few round trips, whatever their number: the
        head's lock and everything the checks need are read first, each op is decided
        in memory (later ops see earlier ones), then the writes go in one batch each."""
        with self.db.tx() as conn:
            start, currents, done, owned, below = self._read_for(conn, ns, ops)
            known = sorted(set(currents) | {op.path for op in ops})
            written: list[Entry] = []

            def first_below(path: str) -> Entry | None:
                lo, hi = bisect_left(known, path + "/"), bisect_left(known, path + "0")
                for p in sorted({*known[lo:hi], *below.get(path, ())}):
                    entry = currents.get(p)
                    if entry is not None and not entry.deleted:
                        return entry
                return None

            def apply(seq: int, op: CommitOp) -> CommitResult:
                if op.op_id is not None and op.op_id in done:
                    return CommitResult("ok", entry=done[op.op_id], replayed=True)
                current = currents.get(op.path)
                refused = vet(
                    op,
                    current,
                    lambda ids: {i: owned[i] for i in ids if i in owned},
                    currents.get,
                    first_below,
                )
                if refused is not None:
                    return refused
                entry = new_entry(ns, seq + 1, op, current, user, device, now)
                currents[op.path] = entry
                if op.op_id is not None:
                    done[op.op_id] = entry
                written.append(entry)
                return CommitResult("ok", entry=entry)

            results, seq = apply_all(start, ops, apply)
            if written:
                self._write(conn, ns, written, seq)
        return results

    def _read_for(
        self, conn: psycopg.Connection, ns: int, ops: Sequence[CommitOp]
    ) -> tuple[int, dict[str, Entry], dict[str, Entry], dict[str, int], dict[str, set[str]]]:
        """(head seq, current entry by path — the ops' paths, their ancestors and what
        lies below the files —, entry by op id, owned chunk sizes, live paths below each
        file)."""
        wanted = {op.path for op in ops}
        for op in ops:
            folder = parent_of(op.path)
            while folder and folder not in wanted:
                wanted.add(folder)
                folder = parent_of(folder)
        paths = list(wanted)
        files = list({op.path for op in ops if op.action == "file"})
        op_ids = list({op.op_id for op in ops if op.op_id is not None})
        chunk_ids = list({b for op in ops for b, _ in op.blocks})
        row = conn.execute(
            "SELECT seq, frozen FROM heads WHERE id = %s FOR UPDATE", (ns,)
        ).fetchone()
        if row is None:
            raise NotHere(ns)
        if row[1]:
            raise Frozen(ns)
        rows = conn.execute(
            f"SELECT {_JCOLS} FROM current c JOIN journal j ON j.ns = c.ns AND j.seq = c.seq"
            " WHERE c.ns = %s AND c.path = ANY(%s)",
            (ns, paths),
        ).fetchall()
        currents = {e.path: e for e in map(row_entry, rows)}
        below: dict[str, set[str]] = {}
        if files:  # live entries below a path a file is written to (it must have none)
            for prefix, *entry_row in conn.execute(
                f"SELECT p.prefix, {_JCOLS} FROM unnest(%s::text[]) AS p(prefix)"
                " JOIN current c ON c.ns = %s AND NOT c.deleted"
                " AND c.path >= (p.prefix || '/') COLLATE \"C\""
                " AND c.path < (p.prefix || '0') COLLATE \"C\""
                " JOIN journal j ON j.ns = c.ns AND j.seq = c.seq",
                (files, ns),
            ).fetchall():
                entry = row_entry(entry_row)
                currents.setdefault(entry.path, entry)
                below.setdefault(prefix, set()).add(entry.path)
        done: dict[str, Entry] = {}
        if op_ids:
            replays = conn.execute(
                f"SELECT o.op_id, {_JCOLS} FROM ops o"
                " JOIN journal j ON j.ns = o.ns AND j.seq = o.seq"
                " WHERE o.ns = %s AND o.op_id = ANY(%s)",
                (ns, op_ids),
            ).fetchall()
            done = {r[0]: row_entry(r[1:]) for r in replays}
        owned = self._sizes(conn, ns, chunk_ids) if chunk_ids else {}
        return row[0], currents, done, owned, below

    @staticmethod
    def _write(conn: psycopg.Connection, ns: int, entries: list[Entry], seq: int) -> None:
        with conn.cursor() as cur:  # executemany pipelines its rows
            cur.executemany(
                f"INSERT INTO journal({_COLS}) VALUES ({_VALUES})", [entry_row(e) for e in entries]
            )
            cur.executemany(
                "INSERT INTO current(ns, path, parent, seq, deleted) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (ns, path) DO UPDATE"
                " SET seq = excluded.seq, deleted = excluded.deleted",
                [(ns, e.path, parent_of(e.path), e.seq, e.deleted) for e in entries],
            )
            with_ids = [(ns, e.op_id, e.seq) for e in entries if e.op_id is not None]
            if with_ids:
                cur.executemany("INSERT INTO ops(ns, op_id, seq) VALUES (%s, %s, %s)", with_ids)
            cur.execute("UPDATE heads SET seq = %s WHERE id = %s", (seq, ns))

    @staticmethod
    def _current(conn: psycopg.Connection, ns: int, path: str) -> Entry | None:
        row = conn.execute(
            f"SELECT {_JCOLS} FROM current c JOIN journal j ON j.ns = c.ns AND j.seq = c.seq"
            " WHERE c.ns = %s AND c.path = %s",
            (ns, path),
        ).fetchone()
        return row_entry(row) if row else None

    def _entries(self, sql: str, args: tuple) -> list[Entry]:
        with self.db.auto() as conn:
            return [row_entry(r) for r in conn.execute(sql, args).fetchall()]

    def changes(self, ns: int, cursor: int, limit: int) -> list[Entry]:
        return self._entries(
            f"SELECT {_COLS} FROM journal WHERE ns = %s AND seq > %s ORDER BY seq LIMIT %s",
            (ns, cursor, limit),
        )

    def current(self, ns: int, path: str) -> Entry | None:
        with self.db.auto() as conn:
            return self._current(conn, ns, path)

    def entry_at(self, ns: int, rev: int) -> Entry | None:
        found = self._entries(f"SELECT {_COLS} FROM journal WHERE ns = %s AND seq = %s", (ns, rev))
        return found[0] if found else None

    def list_folder(self, ns: int, folder: str) -> list[Entry]:
        return self._entries(
            f"SELECT {_JCOLS} FROM current c JOIN journal j ON j.ns = c.ns AND j.seq = c.seq"
            " WHERE c.ns = %s AND c.parent = %s AND NOT c.deleted ORDER BY c.path",
            (ns, folder),
        )

    def tree(self, ns: int, after: str, limit: int) -> list[Entry]:
        return self._entries(
            f"SELECT {_JCOLS} FROM current c JOIN journal j ON j.ns = c.ns AND j.seq = c.seq"
            " WHERE c.ns = %s AND c.path > %s AND NOT c.deleted ORDER BY c.path LIMIT %s",
            (ns, after, limit),
        )

    def history(self, ns: int, path: str, limit: int) -> list[Entry]:
        return self._entries(
            f"SELECT {_COLS} FROM journal WHERE ns = %s AND path = %s ORDER BY seq DESC LIMIT %s",
            (ns, path, limit),
        )
