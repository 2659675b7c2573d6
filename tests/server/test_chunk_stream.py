"""Large single chunks stream through a real server, on local disk and on S3 (moto)."""

from __future__ import annotations

import os

import blake3
import pytest

from tests.support.server import ServerProc, login

MAX = 8 << 20
BIG = 4 << 20


def cid(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def pieces(data: bytes, size: int = 100_000):
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.fixture(scope="module", params=["file", "s3"])
def big_server(request, tmp_path_factory):
    extra = ["--quota", "40MiB"]
    if request.param == "s3":
        moto = request.getfixturevalue("moto")
        bucket = f"stream-{os.urandom(4).hex()}"
        moto.create_bucket(bucket)
        extra += ["--blocks", moto.url(bucket)]
    data = tmp_path_factory.mktemp(f"stream-{request.param}") / "data"
    proc = ServerProc(data, chunking=(1 << 16, 1 << 20, MAX), extra_args=extra).start()
    yield proc
    proc.stop()


@pytest.fixture
def session(big_server):
    name = f"big{os.urandom(4).hex()}"
    big_server.adduser(name)
    return login(big_server, name)


def test_big_chunk_streams_in_and_out(session):
    s = session
    data = os.urandom(BIG)
    # No Content-Length: a chunked upload, read and hashed piece by piece.
    r = s.client.put(s.ns_url(f"chunks/{cid(data)}"), content=pieces(data))
    assert r.status_code == 200, r.text
    assert r.json() == {"id": cid(data), "size": BIG}
    r = s.client.post(s.ns_url("chunks/missing"), json={"ids": [cid(data)]})
    assert r.json() == {"missing": []}
    got = s.client.get(s.ns_url(f"chunks/{cid(data)}"))
    assert got.status_code == 200
    assert got.headers["content-length"] == str(BIG)  # random bytes: sent as they are
    assert got.headers["etag"] == f'"{cid(data)}"'
    assert got.content == data
    # With a Content-Length, and again: idempotent, and the stored copy is reused.
    r = s.client.put(s.ns_url(f"chunks/{cid(data)}"), content=data)
    assert r.status_code == 200, r.text


def test_big_compressible_chunk_comes_back_as_zstd(session):
    s = session
    data = (b"compressible text, line after line\n" * 200_000)[:BIG]
    assert s.client.put(s.ns_url(f"chunks/{cid(data)}"), content=data).status_code == 200
    got = s.client.get(s.ns_url(f"chunks/{cid(data)}"), headers={"Accept-Encoding": "zstd"})
    assert got.headers.get("content-encoding") == "zstd"
    assert int(got.headers.get("content-length") or 0) < BIG
    assert got.content == data  # httpx decodes zstd


def test_big_hash_mismatch_stores_nothing(session):
    s = session
    data = os.urandom(BIG)
    claimed = cid(b"something else")
    r = s.client.put(s.ns_url(f"chunks/{claimed}"), content=pieces(data))
    assert r.status_code == 400
    assert r.json()["error"] == "hash_mismatch"
    r = s.client.post(s.ns_url("chunks/missing"), json={"ids": [claimed, cid(data)]})
    assert r.json()["missing"] == [claimed, cid(data)]
    assert s.client.get(s.ns_url(f"chunks/{claimed}")).status_code == 404


def test_big_chunk_over_the_maximum_is_413_midstream(session):
    s = session
    data = os.urandom(MAX + 1)
    r = s.client.put(s.ns_url(f"chunks/{cid(data)}"), content=pieces(data, 1 << 20))
    assert r.status_code == 413
    assert r.json()["error"] == "too_large"
    r = s.client.post(s.ns_url("chunks/missing"), json={"ids": [cid(data)]})
    assert r.json()["missing"] == [cid(data)]


def test_big_chunk_past_the_quota_is_507_and_not_kept(session):
    s = session
    for _ in range(5):  # 5 x 8 MiB = 40 MiB: the quota
        data = os.urandom(MAX)
        r = s.client.put(s.ns_url(f"chunks/{cid(data)}"), content=pieces(data, 1 << 20))
        assert r.status_code == 200, r.text
    over = os.urandom(BIG)
    r = s.client.put(s.ns_url(f"chunks/{cid(over)}"), content=pieces(over))
    assert r.status_code == 507
    r = s.client.post(s.ns_url("chunks/missing"), json={"ids": [cid(over)]})
    assert r.json()["missing"] == [cid(over)]
