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
        with self.db.tx() as conn:
            conn.execute("INSERT INTO heads(id) VALUES (%s) ON CONFLICT DO NOTHING", (ns,))

    def seq(self, ns: int) -> int | None:
        with self.db.tx() as conn:
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
        with self.db.tx() as conn:
            owned = set(self._sizes(conn, ns, unique))
        return [i for i in unique if i not in owned]

    @staticmethod
    def _sizes(conn: psycopg.Connection, ns: int, ids: Sequence[str]) -> dict[str, int]:
        rows = conn.execute(
            "SELECT id, size FROM chunk_refs WHERE ns = %s AND id = ANY(%s)", (ns, list(ids))
        )
        return dict(rows.fetchall())

    def stored_chunks(self, ids: Sequence[str]) -> set[str]:
        with self.db.tx() as conn:
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
        with self.db.tx() as conn:
            return self._sizes(conn, ns, [chunk_id]).get(chunk_id)

    def stored_bytes(self, ns: int) -> int:
        with self.db.tx() as conn:
            row = conn.execute(
                "SELECT COALESCE(SUM(size), 0) FROM chunk_refs WHERE ns = %s", (ns,)
            ).fetchone()
        return int(row[0])

    # -- journal ---------------------------------------------------------------------
    def commit(
        self, ns: int, ops: Sequence[CommitOp], user: str, device: str, now: float
    ) -> list[CommitResult]:
        with self.db.tx() as conn:
            start = self._lock_head(conn, ns, "UPDATE")
            results, seq = apply_all(
                start, ops, lambda seq, op: self._apply(conn, ns, seq, op, user, device, now)
            )
            if seq != start:
                conn.execute("UPDATE heads SET seq = %s WHERE id = %s", (seq, ns))
        return results

    def _apply(
        self,
        conn: psycopg.Connection,
        ns: int,
        seq: int,
        op: CommitOp,
        user: str,
        device: str,
        now: float,
    ) -> CommitResult:
        if op.op_id is not None:
            done = conn.execute(
                f"SELECT {_JCOLS} FROM ops o JOIN journal j ON j.ns = o.ns AND j.seq = o.seq"
                " WHERE o.ns = %s AND o.op_id = %s",
                (ns, op.op_id),
            ).fetchone()
            if done is not None:
                return CommitResult("ok", entry=row_entry(done), replayed=True)
        current = self._current(conn, ns, op.path)
        refused = vet(op, current, lambda ids: self._sizes(conn, ns, ids))
        if refused is not None:
            return refused
        entry = new_entry(ns, seq + 1, op, current, user, device, now)
        conn.execute(f"INSERT INTO journal({_COLS}) VALUES ({_VALUES})", entry_row(entry))
        conn.execute(
            "INSERT INTO current(ns, path, parent, seq, deleted) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (ns, path) DO UPDATE SET seq = excluded.seq, deleted = excluded.deleted",
            (ns, op.path, parent_of(op.path), entry.seq, entry.deleted),
        )
        if op.op_id is not None:
            conn.execute(
                "INSERT INTO ops(ns, op_id, seq) VALUES (%s, %s, %s)", (ns, op.op_id, entry.seq)
            )
        return CommitResult("ok", entry=entry)

    @staticmethod
    def _current(conn: psycopg.Connection, ns: int, path: str) -> Entry | None:
        row = conn.execute(
            f"SELECT {_JCOLS} FROM current c JOIN journal j ON j.ns = c.ns AND j.seq = c.seq"
            " WHERE c.ns = %s AND c.path = %s",
            (ns, path),
        ).fetchone()
        return row_entry(row) if row else None

    def _entries(self, sql: str, args: tuple) -> list[Entry]:
        with self.db.tx() as conn:
            return [row_entry(r) for r in conn.execute(sql, args).fetchall()]

    def changes(self, ns: int, cursor: int, limit: int) -> list[Entry]:
        return self._entries(
            f"SELECT {_COLS} FROM journal WHERE ns = %s AND seq > %s ORDER BY seq LIMIT %s",
            (ns, cursor, limit),
        )

    def current(self, ns: int, path: str) -> Entry | None:
        with self.db.tx() as conn:
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
