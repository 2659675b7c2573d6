"""The server's journal and chunk API tests again, on a server whose metadata is in
PostgreSQL: a directory with two shards (real processes, real HTTP). The one-database
layout runs the same code (its directory is its only shard) and is in the conformance
suite; add "postgresql" to the params to run these on it too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.metastore.conftest import sharded_url
from tests.server.test_chunks import *  # noqa: F403 - collected again with this server
from tests.server.test_journal import *  # noqa: F403
from tests.support import postgres
from tests.support.server import ServerProc


@pytest.fixture(scope="module", params=["pgshards"])
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


def test_a_moving_namespace_answers_writes_with_503_and_retry_after(server, new_user):
    from syncd.server.metastore.postgres import parse_url

    s = new_user()
    directory, _ = parse_url(server.meta_url)
    ((shard_url,),) = postgres.query(
        directory,
        "UPDATE namespaces n SET moving = 1 FROM shards s WHERE n.id = %s AND s.id = n.shard"
        " RETURNING s.url",
        (s.ns,),
    )
    freeze = "UPDATE heads SET frozen = %s WHERE id = %s"
    postgres.query(shard_url, freeze + " RETURNING id", (True, s.ns))
    r = s.client.post(s.ns_url("commit"), json={"path": "d", "action": "dir", "parent_rev": None})
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert r.json()["error"] == "namespace_moving" and "moving" in r.json()["message"]
    assert s.client.get(s.ns_url("changes")).status_code == 200  # reads go on
    postgres.query(shard_url, freeze + " RETURNING id", (False, s.ns))
    postgres.query(
        directory, "UPDATE namespaces SET moving = NULL WHERE id = %s RETURNING id", (s.ns,)
    )
    r = s.client.post(s.ns_url("commit"), json={"path": "d", "action": "dir", "parent_rev": None})
    assert r.status_code == 200, r.text
