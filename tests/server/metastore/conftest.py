"""The `store` fixture: one metastore per kind — SQLite, one PostgreSQL database, and a
directory with three PostgreSQL shards — so every conformance test runs on each."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from syncd.server.metastore import MetaStore, User, open_metastore
from tests.support import postgres

CHUNKING = (1024, 4096, 16384)
KINDS = ["sqlite", "postgresql", "pgshards"]
_names = itertools.count()


def sharded_url(directory: str, shards: list[str]) -> str:
    return "pgshards://?" + urlencode([("directory", directory), *(("shard", s) for s in shards)])


def open_kind(kind: str, tmp: Path, tag: str) -> tuple[MetaStore, list[str]]:
    """A fresh store of `kind` and the databases it made (to drop afterwards)."""
    if kind == "sqlite":
        return open_metastore(f"sqlite:///{tmp / 'meta.sqlite3'}"), []
    postgres.require()
    if kind == "postgresql":
        return open_metastore(postgres.create(f"{tag}_single")), [f"{tag}_single"]
    names = [f"{tag}_dir"] + [f"{tag}_shard{i}" for i in range(3)]
    urls = [postgres.create(n) for n in names]
    return open_metastore(sharded_url(urls[0], urls[1:])), names


@pytest.fixture(scope="module", params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[MetaStore]:
    meta, dbs = open_kind(request.param, tmp_path_factory.mktemp(request.param), "conf")
    yield meta
    meta.close()
    for name in dbs:
        postgres.drop(name)


@pytest.fixture
def user(store: MetaStore) -> Callable[[], User]:
    """Make a fresh user (and namespace) on the module's store."""

    def make() -> User:
        return store.create_user(f"u{next(_names)}", None, "hash", CHUNKING)

    return make
