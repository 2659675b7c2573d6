"""Smaller metadata on the wire: block lists as runs of an earlier revision
(`blocks_from`), zstd on JSON bodies both ways, and a change feed that only peeks."""

from __future__ import annotations

import json
import os
import threading

import httpx
import zstandard

from tests.server.helpers import cid, commit_file, put


def _big_file(s, n=20):
    chunks = [os.urandom(300) for _ in range(n)]
    entry = commit_file(s, "big.bin", chunks).json()["entry"]
    return chunks, entry


def test_blocks_from_tells_a_block_list_as_runs_of_an_earlier_revision(new_user):
    s = new_user()
    chunks, first = _big_file(s)
    new = os.urandom(300)
    put(s, new)
    runs = [[0, 9], {"id": cid(new), "size": 300}, [10, 10]]
    op = {
        "path": "big.bin",
        "action": "file",
        "parent_rev": first["rev"],
        "size": 20 * 300,
        "blocks_from": {"rev": first["rev"], "runs": runs},
    }
    r = s.client.post(s.ns_url("commit"), json=op)
    assert r.status_code == 200, r.text
    got = [b["id"] for b in r.json()["entry"]["blocks"]]
    assert got == [cid(c) for c in chunks[:9]] + [cid(new)] + [cid(c) for c in chunks[10:]]


def test_blocks_from_refusals_are_4xx(new_user):
    s = new_user()
    _, first = _big_file(s)
    base = {"path": "big.bin", "action": "file", "parent_rev": first["rev"], "size": 6000}
    cases = [
        ({"rev": 999, "runs": [[0, 20]]}, 404, "unknown_revision"),
        ({"rev": first["rev"], "runs": [[5, 20]]}, 400, "bad_run"),
        ({"rev": first["rev"], "runs": [[0, 0]]}, 400, "bad_run"),
    ]
    for spec, status, code in cases:
        r = s.client.post(s.ns_url("commit"), json={**base, "blocks_from": spec})
        assert (r.status_code, r.json()["error"]) == (status, code), r.text
    both = {**base, "blocks": [], "blocks_from": {"rev": first["rev"], "runs": [[0, 20]]}}
    both["blocks"] = [{"id": cid(b"x"), "size": 1}]
    assert s.client.post(s.ns_url("commit"), json=both).status_code == 400
    # another user's revision is not this namespace's: unknown here (D3)
    other = new_user()
    r = other.client.post(
        other.ns_url("commit"),
        json={**base, "parent_rev": None, "blocks_from": {"rev": first["rev"], "runs": [[0, 20]]}},
    )
    assert r.status_code in (404, 409), r.text
    assert r.status_code != 200


def test_json_bodies_travel_zstd_compressed_both_ways(new_user):
    s = new_user()
    _big_file(s, n=40)
    plain = s.client.get(
        s.ns_url("changes"), params={"cursor": 0}, headers={"Accept-Encoding": "identity"}
    )
    assert "content-encoding" not in plain.headers
    raw = httpx.get(
        str(s.client.base_url) + s.ns_url("changes"),
        params={"cursor": 0},
        headers={"Authorization": f"Bearer {s.token}", "Accept-Encoding": "zstd"},
    )
    assert raw.headers["content-encoding"] == "zstd"
    assert int(raw.headers["content-length"]) < len(plain.content)
    assert raw.json() == plain.json()  # httpx inflates it
    # a compressed request body is inflated before the route reads it
    body = json.dumps({"ids": [cid(os.urandom(8)) for _ in range(100)]}).encode()
    r = s.client.post(
        s.ns_url("chunks/missing"),
        content=zstandard.ZstdCompressor().compress(body),
        headers={"Content-Type": "application/json", "Content-Encoding": "zstd"},
    )
    assert r.status_code == 200 and len(r.json()["missing"]) == 100
    bad = s.client.post(
        s.ns_url("chunks/missing"),
        content=b"not zstd at all",
        headers={"Content-Type": "application/json", "Content-Encoding": "zstd"},
    )
    assert (bad.status_code, bad.json()["error"]) == (400, "bad_encoding")
    bomb = zstandard.ZstdCompressor().compress(b" " * (65 << 20))
    r = s.client.post(
        s.ns_url("chunks/missing"),
        content=bomb,
        headers={"Content-Type": "application/json", "Content-Encoding": "zstd"},
    )
    assert (r.status_code, r.json()["error"]) == (413, "too_large")


def test_peek_waits_for_a_commit_and_returns_only_the_journals_end(new_user):
    s = new_user()
    commit_file(s, "a", [b"a"])
    commit_file(s, "b", [b"b"])
    now = s.client.get(s.ns_url("changes"), params={"cursor": 0, "peek": "true"}).json()
    assert now["entries"] == [] and now["cursor"] == 2
    got = {}

    def wait():
        got["page"] = s.client.get(
            s.ns_url("changes"), params={"cursor": 2, "peek": "true", "timeout": 30}
        ).json()

    t = threading.Thread(target=wait)
    t.start()
    commit_file(s, "c", [b"c"])
    t.join(60)
    assert got["page"]["entries"] == [] and got["page"]["cursor"] == 3
    idle = s.client.get(s.ns_url("changes"), params={"cursor": 3, "peek": "true"}).json()
    assert idle["cursor"] == 3


def test_a_compressed_request_for_a_streamed_response_gets_all_of_it(new_user):
    """The route reading an inflated body still hears the real connection: a streaming
    answer (batch download) is not cut short as if the client had gone."""
    s = new_user()
    chunks = [os.urandom(15_000) for _ in range(200)]
    ids = [put(s, c) for c in chunks]
    commit_file(s, "many.bin", chunks)
    body = json.dumps({"ids": ids}).encode()
    r = s.client.post(
        s.ns_url("chunks/get"),
        content=zstandard.ZstdCompressor().compress(body),
        headers={"Content-Type": "application/json", "Content-Encoding": "zstd"},
    )
    assert r.status_code == 200
    assert len(r.content) > sum(map(len, chunks))
