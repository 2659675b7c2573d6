"""Resharding in process: what moves, that nothing is lost or doubled, crash and re-run."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import blake3
import pytest

from syncd.server.metastore import CommitOp, NamespaceMoving, open_metastore
from syncd.server.metastore.postgres import PostgresMetaStore
from syncd.server.metastore.reshard import ReshardError, _copy, _exclusive, reshard
from tests.server.metastore.conftest import CHUNKING, sharded_url
from tests.support import postgres


def no_sleep(_: float) -> None:
    pass


NAMES = ["rs_dir", "rs_shard0", "rs_shard1", "rs_spare0", "rs_spare1"]


@pytest.fixture(scope="module")
def databases() -> Iterator[None]:
    postgres.require()
    for n in NAMES:
        postgres.create(n)
    yield
    for n in NAMES:
        postgres.drop(n)


@pytest.fixture
def layout(databases) -> tuple[str, list[str]]:
    """(the pgshards URL of a directory and 2 shards, URLs of 2 spare databases), empty."""
    urls = [postgres.empty(n) for n in NAMES]
    return sharded_url(urls[0], urls[1:3]), urls[3:]


def populate(meta: PostgresMetaStore, users: int) -> list[int]:
    namespaces = []
    for i in range(users):
        ns = meta.create_user(f"user{i}", None, "h", CHUNKING).namespace
        data = b"chunk of %d" % ns
        chunk = blake3.blake3(data).hexdigest()
        meta.add_chunks(ns, [(chunk, len(data))])
        ops = [CommitOp("f", "file", None, size=len(data), blocks=((chunk, len(data)),))]
        ops += [CommitOp(f"d{j}", "dir", None, op_id=f"{ns}-{j}") for j in range(3)]
        meta.commit(ns, ops, "u", "dev", 1.0)
        namespaces.append(ns)
    return namespaces


def picture(meta: PostgresMetaStore, ns: int) -> tuple:
    """Everything the API can say about a namespace."""
    return (
        meta.namespace(ns),
        meta.changes(ns, 0, 1000),
        meta.tree(ns, "", 1000),
        meta.stored_bytes(ns),
        meta.commit(ns, [CommitOp("d0", "dir", None, op_id=f"{ns}-0")], "u", "dev", 1.0),
    )


def holders(meta: PostgresMetaStore) -> dict[int, set[tuple[str, int]]]:
    """For each namespace, the (table, shard) pairs holding rows of it."""
    from syncd.server.metastore.postgres_shard import NS_TABLES

    found: dict[int, set[tuple[str, int]]] = {}
    for shard in meta.shards(fresh=True):
        for table, col in NS_TABLES.items():
            for (ns,) in postgres.query(shard.url, f"SELECT DISTINCT {col} FROM {table}"):
                found.setdefault(ns, set()).add((table, shard.id))
    return found


def only_on(held: set[tuple[str, int]], shard: int) -> bool:
    """All of a namespace's rows are on `shard` (its head and journal at least)."""
    return {s for _, s in held} == {shard} and {"heads", "journal"} <= {t for t, _ in held}


def test_adding_a_shard_moves_about_a_third_and_only_to_it(layout):
    url, spare = layout
    meta = open_metastore(url)
    try:
        namespaces = populate(meta, 60)
        before = {ns: picture(meta, ns) for ns in namespaces}
        homes = {ns: meta.placement(ns, fresh=True).shard for ns in namespaces}
        report = reshard(meta, [spare[0]], sleep=no_sleep)
        held = holders(meta)
        assert len(meta.shards()) == 3 and report.namespaces == 60
        assert 8 <= len(report.moved) <= 35, report.moved  # ~1/3 of 60
        for ns in namespaces:
            where = meta.placement(ns, fresh=True)
            assert where.moving is None
            assert where.shard == (2 if ns in report.moved else homes[ns])
            assert where.shard == int(meta.home_of(ns).node.removeprefix("shard"))
            assert only_on(held[ns], where.shard)
            assert picture(meta, ns) == before[ns]
        moved = next(iter(report.moved))
        result = meta.commit(moved, [CommitOp("after", "dir", None)], "u", "dev", 2.0)
        assert result[0].entry.seq == 5  # gap-free on the new shard
        again = reshard(meta, sleep=no_sleep)  # nothing left to do
        assert again.moved == {} and again.swept == 0
    finally:
        meta.close()


def test_a_reshard_interrupted_at_any_step_is_finished_by_a_rerun(layout):
    url, spare = layout
    meta = open_metastore(url)
    try:
        namespaces = populate(meta, 24)
        before = {ns: picture(meta, ns) for ns in namespaces}
        new = meta.directory.add_shard(spare[0])
        meta.shards(fresh=True)
        leaving = [ns for ns in namespaces if meta.home_of(ns).id == new.id]
        assert len(leaving) >= 3
        dst = meta.store(new.id)
        for step, ns in enumerate(leaving[:3]):
            src = meta.store(meta.placement(ns).shard)
            meta.directory.set_moving(ns, 1.0)  # crashed after step 1
            with src.db.tx() as conn:
                conn.execute("UPDATE heads SET frozen = true WHERE id = %s", (ns,))
            if step >= 1:
                _copy(ns, src, dst)  # crashed after step 3
            if step >= 2:
                meta.directory.place(ns, new.id)  # crashed after step 4
        with pytest.raises(NamespaceMoving):
            meta.commit(leaving[0], [CommitOp("x", "dir", None)], "u", "dev", 1.0)
        report = reshard(meta, sleep=no_sleep)
        assert report.swept == 1  # the copy step 5 did not delete
        held = holders(meta)
        for ns in namespaces:
            where = meta.placement(ns, fresh=True)
            assert where.moving is None and where.shard == meta.home_of(ns).id
            assert only_on(held[ns], where.shard)
            assert picture(meta, ns) == before[ns]
    finally:
        meta.close()


def test_writes_during_a_reshard_are_refused_or_land_never_lost(layout):
    url, spare = layout
    admin = open_metastore(url)
    server = open_metastore(url)  # another process's view, with its own caches
    try:
        namespaces = populate(admin, 20)
        landed: dict[int, list[int]] = {ns: [] for ns in namespaces}
        refused = 0
        stop = threading.Event()

        def write() -> None:
            nonlocal refused
            i = 0
            while not stop.is_set():
                for ns in namespaces:
                    try:
                        (r,) = server.commit(ns, [CommitOp(f"w{i}", "dir", None)], "u", "d", 1.0)
                        landed[ns].append(r.entry.seq)
                    except NamespaceMoving:
                        refused += 1
                i += 1

        writer = threading.Thread(target=write)
        writer.start()
        try:
            report = reshard(admin, [spare[0]], sleep=no_sleep)
        finally:
            stop.set()
            writer.join()
        assert report.moved
        held = holders(admin)
        for ns in namespaces:
            seqs = [e.seq for e in admin.changes(ns, 0, 100_000)]
            assert seqs == list(range(1, len(seqs) + 1))  # gap-free, nothing doubled
            assert set(landed[ns]) <= set(seqs) and len(seqs) == 4 + len(landed[ns])
            where = admin.placement(ns, fresh=True)
            assert only_on(held[ns], where.shard)
    finally:
        server.close()
        admin.close()


def test_one_reshard_at_a_time(layout):
    url, _ = layout
    meta = open_metastore(url)
    try:
        with _exclusive(meta.directory.url), pytest.raises(ReshardError, match="another"):
            reshard(meta, sleep=no_sleep)
    finally:
        meta.close()
