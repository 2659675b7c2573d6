"""The server's journal and chunk API tests again, on a server whose metadata is in
PostgreSQL: one database, and a directory with two shards (real processes, real HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.metastore.conftest import sharded_url
from tests.server.test_chunks import *  # noqa: F403 - collected again with this server
from tests.server.test_journal import *  # noqa: F403
from tests.support import postgres
from tests.support.server import ServerProc


@pytest.fixture(scope="module", params=["postgresql", "pgshards"])
def server(request, tmp_path_factory) -> Iterator[ServerProc]:
    postgres.require()
    if request.param == "postgresql":
        names = ["api_single"]
        meta = postgres.create(names[0])
    else:
        names = ["api_dir", "api_shard0", "api_shard1"]
        urls = [postgres.create(n) for n in names]
        meta = sharded_url(urls[0], urls[1:])
    proc = ServerProc(tmp_path_factory.mktemp("server") / "data", meta_url=meta).start()
    yield proc
    proc.stop()
    for name in names:
        postgres.drop(name)
