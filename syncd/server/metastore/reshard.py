"""Adding shards: move only the namespaces the grown ring assigns to them.

Each move, one namespace at a time, while servers keep running:
1. the directory marks it moving (writes to it get 503 + Retry-After);
2. its head is frozen on the old shard: this waits for commits in flight, and refuses
   any later write there, whatever placement a server process has cached;
3. one transaction on the new shard deletes leftovers of an earlier attempt, copies the
   head, journal, current tree, op ids and chunk references (COPY, binary), and checks
   row counts against the old shard and that the journal is gap-free up to its head;
4. the directory points at the new shard and clears the mark (writes resume there);
5. the old shard's rows are deleted.
A crash between any two steps loses and duplicates nothing: a re-run redoes the moves
still marked, and a sweep deletes copies that a finished move left behind. Reads go on
from the old shard until step 5. One reshard runs at a time (an advisory lock).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg

from syncd.server.metastore.directory import Placement, Shard
from syncd.server.metastore.migrations import migrate
from syncd.server.metastore.postgres import SHARDS_TTL, PostgresMetaStore
from syncd.server.metastore.postgres_pool import redacted, split_url
from syncd.server.metastore.postgres_shard import NS_TABLES, ShardStore

_RESHARD_LOCK = 0x73796E6364_10


class ReshardError(Exception):
    """A reshard that cannot start or whose copy did not verify (nothing was lost)."""


@dataclass
class Report:
    namespaces: int = 0  # placements looked at
    moved: dict[int, tuple[int, int]] = field(default_factory=dict)  # ns -> (from, to)
    swept: int = 0  # leftover copies deleted


def reshard(
    meta: PostgresMetaStore,
    add: Sequence[str] = (),
    log: Callable[[str], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Register the shards in `add` (migrating them), then move what the ring says."""
    with _exclusive(meta.directory.url):
        for url in add:
            migrate(url, "shard")  # its schema before anyone is placed there
            shard = meta.directory.add_shard(url)
            log(f"shard {shard.id}: {redacted(url)}")
        meta.shards(fresh=True)
        report = Report()
        last = _pass(meta, meta.directory.placements(), report, log)
        # Servers learn of new shards within SHARDS_TTL; namespaces they created meanwhile
        # were placed on the old ring: take a second look at those.
        sleep(SHARDS_TTL + 0.5)
        _pass(meta, (p for p in meta.directory.placements() if p.ns > last), report, log)
        report.swept = _sweep(meta, log)
    return report


def _pass(
    meta: PostgresMetaStore,
    placements: Iterable[Placement],
    report: Report,
    log: Callable[[str], None],
) -> int:
    """Move each of `placements` that is off its ring home; the highest id seen."""
    last = -1
    for where in placements:
        report.namespaces += 1
        last = max(last, where.ns)
        target = meta.home_of(where.ns)
        if where.shard != target.id or where.moving is not None:
            move(meta, where, target)
            if where.shard != target.id:
                report.moved[where.ns] = (where.shard, target.id)
                log(f"namespace {where.ns}: shard {where.shard} -> shard {target.id}")
    return last


def move(meta: PostgresMetaStore, where: Placement, target: Shard) -> None:
    ns, dst = where.ns, meta.store(target.id)
    if where.shard == target.id:  # an interrupted move that had already finished
        with dst.db.auto() as conn:
            conn.execute("UPDATE heads SET frozen = false WHERE id = %s", (ns,))
        meta.directory.place(ns, target.id)
        return
    src = meta.store(where.shard)
    meta.directory.set_moving(ns, time.time())
    with src.db.auto() as conn:
        frozen = conn.execute("UPDATE heads SET frozen = true WHERE id = %s", (ns,)).rowcount
    if frozen != 1:
        raise ReshardError(f"namespace {ns} has no head on shard {where.shard}")
    _copy(ns, src, dst)
    meta.directory.place(ns, target.id)
    _drop(src, ns)


def _copy(ns: int, src: ShardStore, dst: ShardStore) -> None:
    with src.db.tx() as s, dst.db.tx() as d:
        s.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        for table, col in NS_TABLES.items():
            d.execute(f"DELETE FROM {table} WHERE {col} = %s", (ns,))
        for table, col in NS_TABLES.items():
            out = f"COPY (SELECT * FROM {table} WHERE {col} = {int(ns)}) TO STDOUT (FORMAT BINARY)"
            with (
                s.cursor().copy(out) as reader,
                d.cursor().copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as writer,
            ):
                for data in reader:
                    writer.write(data)
        d.execute("UPDATE heads SET frozen = false WHERE id = %s", (ns,))
        have, want = _counts(d, ns), _counts(s, ns)
        if have != want:
            raise ReshardError(f"namespace {ns}: copied {have}, expected {want}; not moved")
        if want["heads"] != 1 or not want["journal"] == want["last_seq"] == want["head_seq"]:
            raise ReshardError(f"namespace {ns}: journal is not gap-free: {want}; not moved")


def _counts(conn: psycopg.Connection, ns: int) -> dict[str, int]:
    counts = {
        table: conn.execute(f"SELECT count(*) FROM {table} WHERE {col} = %s", (ns,)).fetchone()[0]
        for table, col in NS_TABLES.items()
    }
    (counts["last_seq"],) = conn.execute(
        "SELECT COALESCE(MAX(seq), 0) FROM journal WHERE ns = %s", (ns,)
    ).fetchone()
    (counts["head_seq"],) = conn.execute(
        "SELECT COALESCE(MAX(seq), 0) FROM heads WHERE id = %s", (ns,)
    ).fetchone()
    return counts


def _drop(store: ShardStore, ns: int) -> None:
    with store.db.tx() as conn:
        for table, col in NS_TABLES.items():
            conn.execute(f"DELETE FROM {table} WHERE {col} = %s", (ns,))


def _sweep(meta: PostgresMetaStore, log: Callable[[str], None], page: int = 10_000) -> int:
    """Delete namespaces from shards their placement is not on (a crash after step 4)."""
    swept = 0
    for shard in meta.shards():
        store, after = meta.store(shard.id), -1
        while True:
            with store.db.auto() as conn:
                held = [
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM heads WHERE id > %s ORDER BY id LIMIT %s", (after, page)
                    ).fetchall()
                ]
            placed = meta.directory.placements_of(held)
            for ns in held:
                where = placed.get(ns)
                # no placement yet: a user being created right now, whose head comes first
                if where is not None and where.shard != shard.id and where.moving is None:
                    _drop(store, ns)
                    swept += 1
                    log(f"namespace {ns}: deleted the copy left on shard {shard.id}")
            if len(held) < page:
                break
            after = held[-1]
    return swept


@contextmanager
def _exclusive(url: str) -> Iterator[None]:
    """Holds the directory's reshard lock, on a connection of its own, for the block."""
    with psycopg.connect(split_url(url)[0], autocommit=True) as conn:
        (got,) = conn.execute("SELECT pg_try_advisory_lock(%s)", (_RESHARD_LOCK,)).fetchone()
        if not got:
            raise ReshardError("another reshard is running on this directory")
        yield  # closing the connection releases the lock


def run(meta_url: str, add: Sequence[str], log: Callable[[str], None]) -> str:
    """`syncd server reshard`: open the store, reshard, and say what happened."""
    from syncd.server.metastore import open_metastore

    meta = open_metastore(meta_url)
    try:
        if not isinstance(meta, PostgresMetaStore):
            raise ReshardError("resharding needs a PostgreSQL metastore (--meta postgresql://…)")
        report = reshard(meta, add, log)
        shards = len(meta.shards())
    finally:
        meta.close()
    share = len(report.moved) / report.namespaces if report.namespaces else 0.0
    return (
        f"{shards} shards; moved {len(report.moved)} of {report.namespaces} namespaces"
        f" ({share:.0%}); deleted {report.swept} leftover copies"
    )
