"""One conformance suite for every block store: memory, local disk, S3 on moto (real S3)."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import blake3
import httpx
import obstore
import pytest

from syncd.server.blockstore import (
    ChunkNotFound,
    ObstoreBlockStore,
    chunk_key,
    open_blockstore,
)
from syncd.server.blockstore_pack import PackBlockStore
from syncd.server.errors import BackendUnavailable

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(params=["memory", "file", "s3"])
def store_url(request, tmp_path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "file":
        return (tmp_path / "blocks").as_uri()
    return request.getfixturevalue("s3_url")


@pytest.fixture
def store(store_url):
    store = open_blockstore(store_url)
    yield store
    store.close()


def cid(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


async def pieces_of(data: bytes, size: int = 256 * 1024):
    for i in range(0, len(data), size):
        yield data[i : i + size]


def leftovers(store: ObstoreBlockStore | PackBlockStore) -> list[str]:
    """Every loose object key in the store (nothing may linger under staging/); the pack
    store's packs and index are its own (see test_blockstore_pack)."""
    keys = (m["path"] for batch in obstore.list(store._store) for m in batch)
    return sorted(k for k in keys if not k.startswith("packs/"))


async def test_put_get_has_delete(store):
    data = os.urandom(10_000)
    assert not await store.has(cid(data))
    with pytest.raises(ChunkNotFound):
        await store.get(cid(data))
    with pytest.raises(ChunkNotFound):
        await store.open(cid(data))
    await store.put(cid(data), data)
    await store.put(cid(data), memoryview(data))  # idempotent, any buffer
    assert await store.has(cid(data))
    assert await store.get(cid(data)) == data
    await store.delete(cid(data))
    await store.delete(cid(data))  # deleting what is gone is fine
    assert not await store.has(cid(data))
    assert leftovers(store) == []


async def test_put_many_then_get_many_each_chunk_in_order(store):
    chunks = [os.urandom(n) for n in (0, 10, 5000, 80_000)]
    await store.put_many([(cid(c), c) for c in chunks])
    order = [chunks[3], chunks[0], chunks[2], chunks[3], chunks[1]]
    assert [bytes(g) for g in await store.get_many([cid(c) for c in order])] == order
    with pytest.raises(ChunkNotFound):
        await store.get_many([cid(chunks[0]), cid(b"not stored")])


async def test_keys_fan_out_by_id(store):
    data = b"fan out"
    await store.put(cid(data), data)
    if isinstance(store, PackBlockStore):  # put() appends to a pack; streams stay loose
        assert leftovers(store) == [] and await store.has(cid(data))
        return
    assert leftovers(store) == [chunk_key(cid(data))]
    assert chunk_key(cid(data)).startswith(f"{cid(data)[:2]}/{cid(data)[2:4]}/")


async def test_streamed_put_multipart_and_streamed_get(store, store_url):
    data = os.urandom(12 << 20)  # > two 5 MiB parts: a real multipart upload on S3
    seen = []

    async def verify():
        seen.append(True)

    await store.put_stream(cid(data), pieces_of(data), verify)
    assert seen == [True]
    reader = await store.open(cid(data))
    assert reader.size == len(data)
    got = [piece async for piece in reader.pieces]
    if store_url != "memory://":  # (memory holds it as one buffer already)
        assert len(got) > 1  # it came back in pieces, not as one buffer
        assert max(len(p) for p in got) < len(data)
    assert b"".join(got) == data
    assert leftovers(store) == [chunk_key(cid(data))]


async def test_refused_stream_leaves_nothing(store):
    data = os.urandom(6 << 20)

    async def refuse():
        raise ValueError("hash mismatch")

    with pytest.raises(ValueError, match="mismatch"):
        await store.put_stream(cid(data), pieces_of(data), refuse)
    assert not await store.has(cid(data))
    assert leftovers(store) == []


async def test_body_failing_mid_stream_leaves_nothing(store):
    async def broken():
        yield os.urandom(1 << 20)
        raise OSError("client went away")

    async def verify():
        raise AssertionError("never verified")

    with pytest.raises(OSError, match="went away"):
        await store.put_stream(cid(b"x"), broken(), verify)
    assert not await store.has(cid(b"x"))
    assert leftovers(store) == []


async def test_health_check_round_trip(store):
    await store.check()
    await asyncio.gather(*(store.check() for _ in range(5)))  # concurrent checks: no clash
    assert leftovers(store) == []


async def test_signed_url_only_where_the_store_can_sign(store, store_url):
    data = os.urandom(3000)
    await store.put(cid(data), data)
    url = await store.signed_url(cid(data), timedelta(seconds=60))
    if not store_url.startswith("s3://"):
        assert url is None
        return
    assert "X-Amz-Signature" in url
    assert httpx.get(url).content == data  # anyone with the URL, no credentials


async def test_unreachable_s3_is_backend_unavailable():
    store = open_blockstore(
        "s3://nobucket/p?endpoint=http://127.0.0.1:9&access_key_id=a&secret_access_key=b"
    )
    with pytest.raises(BackendUnavailable) as err:
        await store.check()
    assert err.value.backend == "blocks"
    assert "secret" not in str(err.value) and "=b" not in str(err.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3:///prefix", "no bucket"),
        ("s3://b/p?colour=red", "unknown parameter"),
        ("s3://b/p?endpoint=ftp://x", "http:// or https://"),
        ("s3://b/p?skip_signature=maybe", "true/false"),
        ("gopher://x", "unsupported chunk store URL"),
    ],
)
def test_bad_urls_are_clear_errors(url, message):
    with pytest.raises(ValueError, match=message):
        open_blockstore(url)
