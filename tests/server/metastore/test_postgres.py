"""What only the PostgreSQL metastore has: migrations, shards, placement, URLs, outages."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from syncd.server.metastore import MetaStoreUnavailable, NamespaceMoving, open_metastore
from syncd.server.metastore.base import CommitOp
from syncd.server.metastore.migrations import HEADS, HERE, version_table
from syncd.server.metastore.postgres import PostgresMetaStore, parse_url
from syncd.server.metastore.postgres_pool import redacted, split_url
from syncd.server.metastore.ring import namespace_key
from tests.server.metastore.conftest import CHUNKING, sharded_url
from tests.support import postgres


@pytest.fixture(scope="module")
def dbs() -> Iterator[list[str]]:
    postgres.require()
    names = ["pg_dir", "pg_shard0", "pg_shard1", "pg_shard2"]
    yield [postgres.create(n) for n in names]
    for n in names:
        postgres.drop(n)


def test_heads_name_the_newest_scripts():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    for schema, head in HEADS.items():
        config = Config()
        config.set_main_option("script_location", str(HERE / schema))
        assert ScriptDirectory.from_config(config).get_heads() == [head]


def test_a_new_database_gets_its_schema_on_first_start_even_from_two_at_once():
    postgres.require()
    url = postgres.create("pg_fresh")
    try:
        opened: list[PostgresMetaStore] = []
        threads = [
            threading.Thread(target=lambda: opened.append(open_metastore(url))) for _ in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(opened) == 2
        for schema in HEADS:
            rows = postgres.query(url, f"SELECT version_num FROM {version_table(schema)}")
            assert rows == [(HEADS[schema],)]
        user = opened[0].create_user("solo", None, "h", CHUNKING)
        assert opened[1].user_by_name("solo") == user
        assert [s.url for s in opened[1].shards()] == [url]  # its own first shard
        for store in opened:
            store.close()
    finally:
        postgres.drop("pg_fresh")


def test_namespaces_spread_over_the_shards_and_live_on_one_only(dbs):
    store = open_metastore(sharded_url(dbs[0], dbs[1:]))
    try:
        users = [store.create_user(f"spread{i}", None, "h", CHUNKING) for i in range(30)]
        for u in users:
            store.commit(u.namespace, [CommitOp("x", "dir", None)], "u", "d", 1.0)
        shards = store.shards()
        held = {
            s.id: {r[0] for r in postgres.query(s.url, "SELECT ns FROM journal")} for s in shards
        }
        assert all(held.values()), held  # every shard got some
        for u in users:
            where = [sid for sid, nss in held.items() if u.namespace in nss]
            home = store.ring().node_for(namespace_key(u.namespace))
            assert [f"shard{sid}" for sid in where] == [home]
            assert store.placement(u.namespace).shard == where[0]
        tables = postgres.query(
            dbs[0], "SELECT tablename FROM pg_tables WHERE tablename = 'journal'"
        )
        assert tables == []  # the directory holds no journal (vertical partitioning)
    finally:
        store.close()


def test_a_shard_the_directory_does_not_know_is_refused(dbs):
    store = open_metastore(sharded_url(dbs[0], dbs[1:]))
    store.close()
    with pytest.raises(ValueError, match="reshard --add"):
        open_metastore(sharded_url(dbs[0], [*dbs[1:], postgres.url("pg_other")]))
    open_metastore(sharded_url(dbs[0], dbs[1:2])).close()  # a subset is fine


def test_writes_to_a_moving_or_frozen_namespace_are_refused(dbs):
    store = open_metastore(sharded_url(dbs[0], dbs[1:]))
    try:
        ns = store.create_user("mover", None, "h", CHUNKING).namespace
        store.directory.set_moving(ns, 1.0)
        with pytest.raises(NamespaceMoving):
            store.commit(ns, [CommitOp("a", "dir", None)], "u", "d", 1.0)
        assert store.changes(ns, 0, 10) == []  # reads go on
        store.directory.set_moving(ns, None)
        shard = store.store(store.placement(ns, fresh=True).shard)
        with shard.db.tx() as conn:
            conn.execute("UPDATE heads SET frozen = true WHERE id = %s", (ns,))
        with pytest.raises(NamespaceMoving):  # the shard's own fence, whatever the cache
            store.add_chunks(ns, [("ab" * 32, 10)])
        with pytest.raises(NamespaceMoving):
            store.commit(ns, [CommitOp("a", "dir", None)], "u", "d", 1.0)
        with shard.db.tx() as conn:
            conn.execute("UPDATE heads SET frozen = false WHERE id = %s", (ns,))
        assert store.commit(ns, [CommitOp("a", "dir", None)], "u", "d", 1.0)[0].status == "ok"
    finally:
        store.close()


def test_an_unreachable_database_is_unavailable_not_a_crash():
    with pytest.raises(MetaStoreUnavailable, match="cannot"):
        open_metastore("postgresql://postgres@127.0.0.1:1/nothing")


def test_urls():
    assert parse_url("postgresql://h/d") == ("postgresql://h/d", [])
    assert parse_url(sharded_url("postgresql://h/dir", ["postgresql://h/s0?pool_max=3"])) == (
        "postgresql://h/dir",
        ["postgresql://h/s0?pool_max=3"],
    )
    for bad in ["pgshards://?shard=postgresql://h/s", "pgshards://?directory=a&x=1", "mysql://h"]:
        with pytest.raises(ValueError):
            parse_url(bad)
    assert split_url("postgresql://h/d?pool_max=4&sslmode=require") == (
        "postgresql://h/d?sslmode=require",
        {"pool_min": 1, "pool_max": 4},
    )
    with pytest.raises(ValueError):
        split_url("postgresql://h/d?pool_max=lots")
    assert redacted("postgresql://u:secret@h/d") == "postgresql://u:***@h/d"
