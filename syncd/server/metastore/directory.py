"""The directory database: users, devices, the shard list and each namespace's placement.

Vertical partitioning: what is looked up by user or token lives here, once; what grows
with the files (journals, chunk references) lives on the shards. A placement record
says which shard holds a namespace and whether a reshard is moving it right now.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg

from syncd.server.metastore.base import Device, User
from syncd.server.metastore.migrations import migrate
from syncd.server.metastore.postgres_pool import Database


@dataclass(frozen=True, slots=True)
class Shard:
    id: int
    url: str

    @property
    def node(self) -> str:
        """Its name on the hash ring (the id, so a shard may change address)."""
        return f"shard{self.id}"


@dataclass(frozen=True, slots=True)
class Placement:
    ns: int
    owner: int
    chunking: tuple[int, int, int]
    shard: int
    moving: float | None  # when a reshard started moving it


_DEVICE = "d.id, d.user_id, d.name, d.created, d.last_seen, d.revoked"
_USER = (
    "u.id, u.name, u.email, u.password_hash,"
    " (SELECT MIN(n.id) FROM namespaces n WHERE n.owner = u.id)"
)
_PLACEMENT = "id, owner, chunk_min, chunk_avg, chunk_max, shard, moving"


def _placement(row: tuple) -> Placement:
    ns, owner, lo, avg, hi, shard, moving = row
    return Placement(ns, owner, (lo, avg, hi), shard, moving)


class Directory:
    def __init__(self, url: str) -> None:
        migrate(url, "directory")
        self.db = Database(url)
        self.url = url

    def close(self) -> None:
        self.db.close()

    # -- shards ----------------------------------------------------------------------
    def shards(self) -> list[Shard]:
        with self.db.auto() as conn:
            rows = conn.execute("SELECT id, url FROM shards ORDER BY id").fetchall()
        return [Shard(*r) for r in rows]

    def add_shard(self, url: str) -> Shard:
        """Register a shard (idempotent by URL); its id is the next free one."""
        with self.db.tx() as conn:
            conn.execute("LOCK TABLE shards IN SHARE ROW EXCLUSIVE MODE")
            row = conn.execute("SELECT id, url FROM shards WHERE url = %s", (url,)).fetchone()
            if row is not None:
                return Shard(*row)
            (next_id,) = conn.execute("SELECT COALESCE(MAX(id) + 1, 0) FROM shards").fetchone()
            conn.execute(
                "INSERT INTO shards(id, url, added) VALUES (%s, %s, %s)",
                (next_id, url, time.time()),
            )
            return Shard(next_id, url)

    # -- users and devices -----------------------------------------------------------
    def new_namespace_id(self) -> int:
        with self.db.auto() as conn:
            return conn.execute("SELECT nextval('namespace_ids')").fetchone()[0]

    def create_user(
        self,
        name: str,
        email: str | None,
        password_hash: str,
        chunking: tuple[int, int, int],
        ns: int,
        shard: int,
    ) -> User:
        """The user and their namespace `ns` (already given a head on `shard`)."""
        try:
            with self.db.tx() as conn:
                (user_id,) = conn.execute(
                    "INSERT INTO users(name, email, password_hash, created)"
                    " VALUES (%s, %s, %s, %s) RETURNING id",
                    (name, email, password_hash, time.time()),
                ).fetchone()
                conn.execute(
                    f"INSERT INTO namespaces({_PLACEMENT}) VALUES (%s, %s, %s, %s, %s, %s, NULL)",
                    (ns, user_id, *chunking, shard),
                )
        except psycopg.errors.UniqueViolation:
            raise ValueError(f"user {name!r} already exists") from None
        return User(user_id, name, email, password_hash, ns)

    def user_by_name(self, name: str) -> User | None:
        with self.db.auto() as conn:
            row = conn.execute(f"SELECT {_USER} FROM users u WHERE u.name = %s", (name,)).fetchone()
        return User(*row) if row and row[4] is not None else None

    def add_device(self, user_id: int, name: str, token_hash: str, now: float) -> Device:
        with self.db.auto() as conn:
            (device_id,) = conn.execute(
                "INSERT INTO devices(user_id, name, token_hash, created)"
                " VALUES (%s, %s, %s, %s) RETURNING id",
                (user_id, name, token_hash, now),
            ).fetchone()
        return Device(device_id, user_id, name, now, None, None)

    def device_by_token(self, token_hash: str) -> tuple[Device, User] | None:
        with self.db.auto() as conn:
            row = conn.execute(
                f"SELECT {_DEVICE}, {_USER} FROM devices d JOIN users u ON u.id = d.user_id"
                " WHERE d.token_hash = %s AND d.revoked IS NULL",
                (token_hash,),
            ).fetchone()
        if row is None or row[10] is None:
            return None
        return Device(*row[:6]), User(*row[6:])

    def list_devices(self, user_id: int) -> list[Device]:
        with self.db.auto() as conn:
            rows = conn.execute(
                f"SELECT {_DEVICE} FROM devices d WHERE d.user_id = %s ORDER BY d.id", (user_id,)
            ).fetchall()
        return [Device(*r) for r in rows]

    def revoke_device(self, user_id: int, device_id: int, now: float) -> bool:
        with self.db.auto() as conn:
            cur = conn.execute(
                "UPDATE devices SET revoked = %s"
                " WHERE id = %s AND user_id = %s AND revoked IS NULL",
                (now, device_id, user_id),
            )
            return cur.rowcount == 1

    # -- placement -------------------------------------------------------------------
    def placement(self, ns: int) -> Placement | None:
        with self.db.auto() as conn:
            row = conn.execute(
                f"SELECT {_PLACEMENT} FROM namespaces WHERE id = %s", (ns,)
            ).fetchone()
        return _placement(row) if row else None

    def placements(self, page: int = 10_000) -> Iterator[Placement]:
        """Every placement in id order, read a page at a time."""
        after = -1
        while True:
            with self.db.auto() as conn:
                rows = conn.execute(
                    f"SELECT {_PLACEMENT} FROM namespaces WHERE id > %s ORDER BY id LIMIT %s",
                    (after, page),
                ).fetchall()
            yield from (_placement(r) for r in rows)
            if len(rows) < page:
                return
            after = rows[-1][0]

    def placements_of(self, ids: list[int]) -> dict[int, Placement]:
        with self.db.auto() as conn:
            rows = conn.execute(
                f"SELECT {_PLACEMENT} FROM namespaces WHERE id = ANY(%s)", (ids,)
            ).fetchall()
        return {r[0]: _placement(r) for r in rows}

    def set_moving(self, ns: int, since: float | None) -> None:
        with self.db.auto() as conn:
            conn.execute("UPDATE namespaces SET moving = %s WHERE id = %s", (since, ns))

    def place(self, ns: int, shard: int) -> None:
        """The namespace now lives on `shard`; the move is over."""
        with self.db.auto() as conn:
            conn.execute(
                "UPDATE namespaces SET shard = %s, moving = NULL WHERE id = %s", (shard, ns)
            )
