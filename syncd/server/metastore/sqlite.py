"""The embedded metadata store: one SQLite file in WAL mode."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from syncd.paths import parent_of
from syncd.server.metastore.base import (
    CommitOp,
    CommitResult,
    Device,
    Entry,
    InvalidCommit,
    Namespace,
    User,
)
from syncd.server.metastore.rules import (
    apply_all,
    columns,
    entry_row,
    new_entry,
    row_entry,
    vet,
)

# Each item upgrades the schema by one version (PRAGMA user_version counts them).
MIGRATIONS: list[str] = [
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, email TEXT,
        password_hash TEXT NOT NULL, created REAL NOT NULL);
    CREATE TABLE namespaces (
        id INTEGER PRIMARY KEY, owner INTEGER NOT NULL REFERENCES users(id),
        chunk_min INTEGER NOT NULL, chunk_avg INTEGER NOT NULL, chunk_max INTEGER NOT NULL,
        seq INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX namespaces_owner ON namespaces(owner);
    CREATE TABLE devices (
        id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id),
        name TEXT NOT NULL, token_hash TEXT UNIQUE NOT NULL, created REAL NOT NULL,
        last_seen REAL, revoked REAL);
    CREATE INDEX devices_user ON devices(user_id);
    CREATE TABLE journal (
        ns INTEGER NOT NULL, seq INTEGER NOT NULL, path TEXT NOT NULL, kind TEXT NOT NULL,
        deleted INTEGER NOT NULL, size INTEGER NOT NULL, mode INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL, blocks TEXT NOT NULL, user TEXT NOT NULL,
        device TEXT NOT NULL, op_id TEXT, server_time REAL NOT NULL, prev_rev INTEGER,
        PRIMARY KEY (ns, seq)) WITHOUT ROWID;
    CREATE INDEX journal_path ON journal(ns, path, seq);
    CREATE TABLE current (
        ns INTEGER NOT NULL, path TEXT NOT NULL, parent TEXT NOT NULL,
        seq INTEGER NOT NULL, deleted INTEGER NOT NULL,
        PRIMARY KEY (ns, path)) WITHOUT ROWID;
    CREATE INDEX current_parent ON current(ns, parent, path);
    CREATE TABLE ops (
        ns INTEGER NOT NULL, op_id TEXT NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (ns, op_id)) WITHOUT ROWID;
    CREATE TABLE chunks (id TEXT PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE chunk_refs (
        ns INTEGER NOT NULL, id TEXT NOT NULL, PRIMARY KEY (ns, id)) WITHOUT ROWID;
    """,
]

_ENTRY_COLS = columns()


class SqliteMetaStore:
    """Thread-safe: one connection per thread; writers serialize on BEGIN IMMEDIATE."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._migrate()

    # -- connections -----------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for i, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={i}")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- users and devices -----------------------------------------------------------
    def create_user(
        self, name: str, email: str | None, password_hash: str, chunking: tuple[int, int, int]
    ) -> User:
        with self._write() as conn:
            try:
                cur = conn.execute(
                    "INSERT INTO users(name, email, password_hash, created) VALUES (?,?,?,?)",
                    (name, email, password_hash, time.time()),
                )
            except sqlite3.IntegrityError:
                raise ValueError(f"user {name!r} already exists") from None
            user_id = int(cur.lastrowid or 0)
            cur = conn.execute(
                "INSERT INTO namespaces(owner, chunk_min, chunk_avg, chunk_max) VALUES (?,?,?,?)",
                (user_id, *chunking),
            )
            return User(user_id, name, email, password_hash, int(cur.lastrowid or 0))

    def _user(self, where: str, arg: object) -> User | None:
        row = (
            self._conn()
            .execute(
                "SELECT u.id, u.name, u.email, u.password_hash, MIN(n.id) FROM users u"
                f" JOIN namespaces n ON n.owner = u.id WHERE {where} GROUP BY u.id",
                (arg,),
            )
            .fetchone()
        )
        return User(*row) if row else None

    def user_by_name(self, name: str) -> User | None:
        return self._user("u.name = ?", name)

    def add_device(self, user_id: int, name: str, token_hash: str, now: float) -> Device:
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO devices(user_id, name, token_hash, created) VALUES (?,?,?,?)",
                (user_id, name, token_hash, now),
            )
            return Device(int(cur.lastrowid or 0), user_id, name, now, None, None)

    def device_by_token(self, token_hash: str) -> tuple[Device, User] | None:
        row = (
            self._conn()
            .execute(
                "SELECT id, user_id, name, created, last_seen, revoked FROM devices"
                " WHERE token_hash = ? AND revoked IS NULL",
                (token_hash,),
            )
            .fetchone()
        )
        if row is None:
            return None
        device = Device(*row)
        user = self._user("u.id = ?", device.user_id)
        return (device, user) if user else None

    def list_devices(self, user_id: int) -> list[Device]:
        rows = self._conn().execute(
            "SELECT id, user_id, name, created, last_seen, revoked FROM devices"
            " WHERE user_id = ? ORDER BY id",
            (user_id,),
        )
        return [Device(*r) for r in rows]

    def revoke_device(self, user_id: int, device_id: int, now: float) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE devices SET revoked = ? WHERE id = ? AND user_id = ? AND revoked IS NULL",
                (now, device_id, user_id),
            )
            return cur.rowcount == 1

    # -- namespaces and chunks -------------------------------------------------------
    def namespace(self, ns: int) -> Namespace | None:
        row = (
            self._conn()
            .execute(
                "SELECT id, owner, chunk_min, chunk_avg, chunk_max, seq FROM namespaces"
                " WHERE id = ?",
                (ns,),
            )
            .fetchone()
        )
        return Namespace(*row) if row else None

    def can_access(self, user_id: int, ns: int) -> bool:
        row = (
            self._conn()
            .execute("SELECT 1 FROM namespaces WHERE id = ? AND owner = ?", (ns, user_id))
            .fetchone()
        )
        return row is not None

    def missing_chunks(self, ns: int, ids: Sequence[str]) -> list[str]:
        conn = self._conn()
        owned: set[str] = set()
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = conn.execute(
                f"SELECT id FROM chunk_refs WHERE ns = ? AND id IN ({marks})", (ns, *part)
            )
            owned.update(r[0] for r in rows)
        return [i for i in unique if i not in owned]

    def stored_chunks(self, ids: Sequence[str]) -> set[str]:
        """Which of these chunks the store already holds (in any namespace)."""
        conn, found = self._conn(), set()
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            marks = ",".join("?" * len(part))
            found.update(
                r[0] for r in conn.execute(f"SELECT id FROM chunks WHERE id IN ({marks})", part)
            )
        return found

    def chunk_stored(self, chunk_id: str) -> bool:
        row = self._conn().execute("SELECT 1 FROM chunks WHERE id = ?", (chunk_id,)).fetchone()
        return row is not None

    def stored_bytes(self, ns: int) -> int:
        row = (
            self._conn()
            .execute(
                "SELECT COALESCE(SUM(c.size), 0) FROM chunk_refs r JOIN chunks c ON c.id = r.id"
                " WHERE r.ns = ?",
                (ns,),
            )
            .fetchone()
        )
        return int(row[0])

    def add_chunks(self, ns: int, chunks: Sequence[tuple[str, int]]) -> None:
        with self._write() as conn:
            conn.executemany("INSERT OR IGNORE INTO chunks(id, size) VALUES (?,?)", chunks)
            conn.executemany(
                "INSERT OR IGNORE INTO chunk_refs(ns, id) VALUES (?,?)",
                [(ns, cid) for cid, _ in chunks],
            )

    def owns_chunk(self, ns: int, chunk_id: str) -> int | None:
        row = (
            self._conn()
            .execute(
                "SELECT c.size FROM chunk_refs r JOIN chunks c ON c.id = r.id"
                " WHERE r.ns = ? AND r.id = ?",
                (ns, chunk_id),
            )
            .fetchone()
        )
        return row[0] if row else None

    # -- journal ---------------------------------------------------------------------
    def commit(
        self, ns: int, ops: Sequence[CommitOp], user: str, device: str, now: float
    ) -> list[CommitResult]:
        with self._write() as conn:
            row = conn.execute("SELECT seq FROM namespaces WHERE id = ?", (ns,)).fetchone()
            if row is None:
                raise InvalidCommit(f"namespace {ns} does not exist")
            results, seq = apply_all(
                row[0], ops, lambda seq, op: self._apply(conn, ns, seq, op, user, device, now)
            )
            conn.execute("UPDATE namespaces SET seq = ? WHERE id = ?", (seq, ns))
        return results

    def _apply(
        self,
        conn: sqlite3.Connection,
        ns: int,
        seq: int,
        op: CommitOp,
        user: str,
        device: str,
        now: float,
    ) -> CommitResult:
        if op.op_id is not None:
            done = conn.execute(
                "SELECT seq FROM ops WHERE ns = ? AND op_id = ?", (ns, op.op_id)
            ).fetchone()
            if done is not None:
                return CommitResult("ok", entry=self._entry_at(conn, ns, done[0]), replayed=True)
        current = self._current(conn, ns, op.path)
        refused = vet(
            op,
            current,
            lambda ids: self._owned_sizes(conn, ns, ids),
            lambda path: self._current(conn, ns, path),
            lambda path: self._first_below(conn, ns, path),
        )
        if refused is not None:
            return refused
        entry = new_entry(ns, seq + 1, op, current, user, device, now)
        conn.execute(
            f"INSERT INTO journal({_ENTRY_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            entry_row(entry),
        )
        conn.execute(
            "INSERT INTO current(ns, path, parent, seq, deleted) VALUES (?,?,?,?,?)"
            " ON CONFLICT(ns, path) DO UPDATE SET seq = excluded.seq, deleted = excluded.deleted",
            (ns, op.path, parent_of(op.path), entry.seq, int(entry.deleted)),
        )
        if op.op_id is not None:
            conn.execute(
                "INSERT INTO ops(ns, op_id, seq) VALUES (?,?,?)", (ns, op.op_id, entry.seq)
            )
        return CommitResult("ok", entry=entry)

    def _owned_sizes(self, conn: sqlite3.Connection, ns: int, ids: list[str]) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            sizes.update(
                conn.execute(
                    "SELECT r.id, c.size FROM chunk_refs r JOIN chunks c ON c.id = r.id"
                    f" WHERE r.ns = ? AND r.id IN ({marks})",
                    (ns, *part),
                )
            )
        return sizes

    def _first_below(self, conn: sqlite3.Connection, ns: int, path: str) -> Entry | None:
        """A live entry strictly below `path`, if there is one."""
        row = conn.execute(
            "SELECT path FROM current WHERE ns = ? AND path >= ? AND path < ? AND deleted = 0"
            " LIMIT 1",
            (ns, path + "/", path + "0"),  # '/' sorts right before '0'
        ).fetchone()
        return None if row is None else self._current(conn, ns, row[0])

    def _current(self, conn: sqlite3.Connection, ns: int, path: str) -> Entry | None:
        row = conn.execute(
            f"SELECT {columns('j')} FROM current c JOIN journal j"
            " ON j.ns = c.ns AND j.seq = c.seq WHERE c.ns = ? AND c.path = ?",
            (ns, path),
        ).fetchone()
        return row_entry(row) if row else None

    def _entry_at(self, conn: sqlite3.Connection, ns: int, seq: int) -> Entry | None:
        row = conn.execute(
            f"SELECT {_ENTRY_COLS} FROM journal WHERE ns = ? AND seq = ?", (ns, seq)
        ).fetchone()
        return row_entry(row) if row else None

    def changes(self, ns: int, cursor: int, limit: int) -> list[Entry]:
        rows = self._conn().execute(
            f"SELECT {_ENTRY_COLS} FROM journal WHERE ns = ? AND seq > ? ORDER BY seq LIMIT ?",
            (ns, cursor, limit),
        )
        return [row_entry(r) for r in rows]

    def current(self, ns: int, path: str) -> Entry | None:
        return self._current(self._conn(), ns, path)

    def entry_at(self, ns: int, rev: int) -> Entry | None:
        return self._entry_at(self._conn(), ns, rev)

    def list_folder(self, ns: int, folder: str) -> list[Entry]:
        rows = self._conn().execute(
            f"SELECT {columns('j')} FROM current c JOIN journal j"
            " ON j.ns = c.ns AND j.seq = c.seq"
            " WHERE c.ns = ? AND c.parent = ? AND c.deleted = 0 ORDER BY c.path",
            (ns, folder),
        )
        return [row_entry(r) for r in rows]

    def tree(self, ns: int, after: str, limit: int) -> list[Entry]:
        rows = self._conn().execute(
            f"SELECT {columns('j')} FROM current c JOIN journal j"
            " ON j.ns = c.ns AND j.seq = c.seq"
            " WHERE c.ns = ? AND c.path > ? AND c.deleted = 0 ORDER BY c.path LIMIT ?",
            (ns, after, limit),
        )
        return [row_entry(r) for r in rows]

    def history(self, ns: int, path: str, limit: int) -> list[Entry]:
        rows = self._conn().execute(
            f"SELECT {_ENTRY_COLS} FROM journal WHERE ns = ? AND path = ?"
            " ORDER BY seq DESC LIMIT ?",
            (ns, path, limit),
        )
        return [row_entry(r) for r in rows]
