"""Chunk upload, verification, bounds, zstd and download over real HTTP."""

from __future__ import annotations

import os

from syncd.wire import BATCH_CONTENT_TYPE, encode_frames, iter_frames, zstd_compress
from tests.server.helpers import cid, put, put_batch


def test_has_put_get_roundtrip(new_user):
    s = new_user()
    data = os.urandom(5000)
    r = s.client.post(s.ns_url("chunks/missing"), json={"ids": [cid(data)]})
    assert r.json() == {"missing": [cid(data)]}
    put(s, data)
    r = s.client.post(s.ns_url("chunks/missing"), json={"ids": [cid(data), cid(b"x")]})
    assert r.json() == {"missing": [cid(b"x")]}
    got = s.client.get(s.ns_url(f"chunks/{cid(data)}"))
    assert got.content == data
    assert got.headers["etag"] == f'"{cid(data)}"'
    assert "immutable" in got.headers["cache-control"]
    again = s.client.get(
        s.ns_url(f"chunks/{cid(data)}"), headers={"If-None-Match": got.headers["etag"]}
    )
    assert again.status_code == 304


def test_hash_mismatch_is_rejected_and_nothing_is_stored(new_user):
    s = new_user()
    data = b"honest bytes"
    r = s.client.put(s.ns_url(f"chunks/{cid(b'other bytes')}"), content=data)
    assert r.status_code == 400
    assert r.json()["error"] == "hash_mismatch"
    r = s.client.post(s.ns_url("chunks/missing"), json={"ids": [cid(b"other bytes"), cid(data)]})
    assert r.json()["missing"] == [cid(b"other bytes"), cid(data)]


def test_batch_upload_is_verified_as_a_whole(new_user):
    s = new_user()
    good = [os.urandom(100) for _ in range(20)]
    assert put_batch(s, good) == [cid(c) for c in good]
    r = s.client.post(s.ns_url("chunks/missing"), json={"ids": [cid(c) for c in good]})
    assert r.json() == {"missing": []}

    fresh = os.urandom(64)
    forged = encode_frames([(cid(fresh), fresh), (cid(b"a"), b"b")])
    r = s.client.post(
        s.ns_url("chunks"), content=forged, headers={"Content-Type": BATCH_CONTENT_TYPE}
    )
    assert r.status_code == 400
    assert r.json()["bad"] == [cid(b"a")]
    r = s.client.post(s.ns_url("chunks/missing"), json={"ids": [cid(fresh)]})
    assert r.json()["missing"] == [cid(fresh)]


def test_truncated_batch_is_a_clear_400(new_user):
    s = new_user()
    body = encode_frames([(cid(b"abc"), b"abc")])[:-1]
    r = s.client.post(s.ns_url("chunks"), content=body)
    assert r.status_code == 400
    assert "truncated" in r.json()["message"]


def test_chunk_larger_than_the_namespace_max_is_413(new_user):
    s = new_user()
    big = os.urandom(s.chunking["max"] + 1)
    r = s.client.put(s.ns_url(f"chunks/{cid(big)}"), content=big)
    assert r.status_code == 413
    body = encode_frames([(cid(big), big)])
    r = s.client.post(s.ns_url("chunks"), content=body)
    assert r.status_code == 413


def test_zstd_on_the_wire_both_ways(new_user):
    s = new_user()
    data = b"very compressible " * 500
    data = data[: s.chunking["max"]]
    r = s.client.put(
        s.ns_url(f"chunks/{cid(data)}"),
        content=zstd_compress(data),
        headers={"Content-Encoding": "zstd"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["size"] == len(data)
    got = s.client.get(s.ns_url(f"chunks/{cid(data)}"), headers={"Accept-Encoding": "zstd"})
    assert got.content == data  # httpx decodes zstd transparently

    bad = s.client.put(
        s.ns_url(f"chunks/{cid(data)}"), content=b"not zstd", headers={"Content-Encoding": "zstd"}
    )
    assert bad.status_code == 400
    bomb = zstd_compress(b"\0" * (s.chunking["max"] * 4))
    r = s.client.put(
        s.ns_url(f"chunks/{cid(b'x')}"), content=bomb, headers={"Content-Encoding": "zstd"}
    )
    assert r.status_code == 413


def test_batch_download(new_user):
    s = new_user()
    chunks = [os.urandom(300) for _ in range(10)]
    put_batch(s, chunks)
    r = s.client.post(s.ns_url("chunks/get"), json={"ids": [cid(c) for c in chunks]})
    assert r.status_code == 200
    frames = list(iter_frames(r.content, max_chunk=1 << 20))
    assert [(i, bytes(d)) for i, d in frames] == [(cid(c), c) for c in chunks]


def test_bad_chunk_ids_are_400(new_user):
    s = new_user()
    r = s.client.post(s.ns_url("chunks/missing"), json={"ids": ["XYZ"]})
    assert r.status_code == 400
    assert r.json()["error"] == "bad_chunk_id"
    assert s.client.get(s.ns_url("chunks/" + "A" * 64)).status_code == 400
