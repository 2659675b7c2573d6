"""Two users are fully isolated, even when one knows the other's chunk ids (D3)."""

from __future__ import annotations

from tests.server.helpers import cid, commit_file, put


def test_user_b_cannot_see_reference_or_fetch_user_a_chunks(new_user):
    a, b = new_user(), new_user()
    secret = b"a's secret content " * 100
    assert commit_file(a, "secret.txt", [secret]).status_code == 200
    chunk = cid(secret)

    # B's namespace is off limits
    for method, tail in [("GET", "tree"), ("GET", "list"), ("GET", "changes")]:
        r = b.client.request(method, f"/v1/ns/{a.ns}/{tail}")
        assert r.status_code == 403, (tail, r.text)
    assert b.client.get(f"/v1/ns/{a.ns}/chunks/{chunk}").status_code == 403

    # In B's own namespace, A's chunk does not exist: has, download and commit all say so
    r = b.client.post(b.ns_url("chunks/missing"), json={"ids": [chunk]})
    assert r.json() == {"missing": [chunk]}
    assert b.client.get(b.ns_url(f"chunks/{chunk}")).status_code == 404
    r = b.client.post(b.ns_url("chunks/get"), json={"ids": [chunk]})
    assert r.status_code == 404
    op = {
        "path": "stolen.txt",
        "action": "file",
        "size": len(secret),
        "blocks": [{"id": chunk, "size": len(secret)}],
    }
    r = b.client.post(b.ns_url("commit"), json=op)
    assert r.status_code == 412
    assert r.json()["missing"] == [chunk]
    # A's tree is untouched and B's is empty
    assert [e["path"] for e in a.client.get(a.ns_url("tree")).json()["entries"]] == ["secret.txt"]
    assert b.client.get(b.ns_url("tree")).json()["entries"] == []


def test_uploading_the_same_content_gives_b_its_own_reference(new_user):
    a, b = new_user(), new_user()
    data = b"shared bytes" * 50
    put(a, data)
    # B proves possession by uploading the bytes; only then may it reference them
    put(b, data)
    r = b.client.post(b.ns_url("chunks/missing"), json={"ids": [cid(data)]})
    assert r.json() == {"missing": []}
    assert b.client.get(b.ns_url(f"chunks/{cid(data)}")).content == data
