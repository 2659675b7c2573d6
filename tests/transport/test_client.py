"""The HTTP client against a real server process: chunks, commits, feed, errors."""

from __future__ import annotations

import os

import blake3
import pytest

from syncd.errors import AuthError, Offline, RequestRejected
from syncd.transport import Backoff, ServerClient
from tests.support.server import free_port


@pytest.fixture
def client(server):
    if not getattr(server, "_transport_user", False):
        server.adduser("transport-user")
        server._transport_user = True
    info = ServerClient(server.url).login("transport-user", "correct horse", "t")
    c = ServerClient(server.url, info["token"])
    c.ns = info["namespace"]
    yield c
    c.close()


def cid(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def test_chunks_batched_up_and_down(client):
    small = [os.urandom(1000 + i) for i in range(50)]
    big = os.urandom(15000)
    items = [(cid(c), c) for c in [*small, big]]
    assert set(client.missing(client.ns, [i for i, _ in items])) == {i for i, _ in items}
    client.put_chunks(client.ns, items)
    assert client.missing(client.ns, [i for i, _ in items]) == []
    sizes = {i: len(d) for i, d in items}
    got = dict(client.get_chunks(client.ns, [i for i, _ in items], sizes))
    assert got == dict(items)


def test_commit_and_feed(client):
    data = os.urandom(3000)
    client.put_chunks(client.ns, [(cid(data), data)])
    start = client.changes(client.ns, 0).cursor
    op = {
        "path": "feed/one.bin",
        "action": "file",
        "size": 3000,
        "blocks": [{"id": cid(data), "size": 3000}],
        "op_id": "feed-1",
    }
    (res,) = client.commit_batch(client.ns, [op])
    assert res["status"] == "ok"
    page = client.changes(client.ns, start)
    assert [e["path"] for e in page.entries] == ["feed/one.bin"]
    (again,) = client.commit_batch(client.ns, [op])
    assert again["replayed"] is True
    entries, cursor = client.tree(client.ns)
    assert "feed/one.bin" in [e["path"] for e in entries] and cursor >= page.cursor
    assert client.history(client.ns, "feed/one.bin")[0]["rev"] == res["entry"]["rev"]


def test_errors_are_converted(server, client):
    with pytest.raises(RequestRejected) as err:
        client.history(client.ns, "no/such/path")
    assert err.value.status == 404
    with pytest.raises(AuthError):
        ServerClient(server.url, "sdt_forged").me()
    with pytest.raises(AuthError):
        ServerClient(server.url).login("transport-user", "wrong", "x")


def test_unreachable_server_is_offline_after_retries():
    slept: list[float] = []
    c = ServerClient(
        f"http://127.0.0.1:{free_port()}",
        "t",
        attempts=3,
        backoff=Backoff(rand=lambda: 1.0),
        sleep=slept.append,
    )
    with pytest.raises(Offline):
        c.me()
    assert slept == [0.2, 0.4]
