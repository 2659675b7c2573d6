"""Commits, conflicts, missing chunks, idempotency, list, history and restore."""

from __future__ import annotations

import os

from tests.server.helpers import cid, commit_file, put


def test_commit_file_carries_everything_an_indexer_needs(new_user):
    s = new_user("laptop")
    chunks = [os.urandom(1000), os.urandom(2000)]
    r = commit_file(s, "docs/report.final.txt", chunks, mode=0o755, mtime_ns=1_700_000_000_123)
    assert r.status_code == 200, r.text
    e = r.json()["entry"]
    assert e["path"] == "docs/report.final.txt"
    assert (e["name"], e["ext"]) == ("report.final.txt", "txt")
    assert e["is_folder"] is False and e["deleted"] is False
    assert e["size"] == 3000 and e["mode"] == 0o755 and e["mtime_ns"] == 1_700_000_000_123
    assert e["rev"] == e["seq"] == 1
    assert [(b["order"], b["id"], b["size"]) for b in e["blocks"]] == [
        (0, cid(chunks[0]), 1000),
        (1, cid(chunks[1]), 2000),
    ]
    assert e["user"].startswith("user") and e["device"] == "laptop"


def test_sequence_is_gap_free_across_paths_and_kinds(new_user):
    s = new_user()
    seqs = []
    for op in [
        {"path": "a", "action": "dir"},
        {"path": "a/b", "action": "dir"},
    ]:
        seqs.append(s.client.post(s.ns_url("commit"), json=op).json()["entry"]["seq"])
    seqs.append(commit_file(s, "a/b/f", [b"x"]).json()["entry"]["seq"])
    r = s.client.post(
        s.ns_url("commit"), json={"path": "a/b/f", "action": "delete", "parent_rev": 3}
    )
    seqs.append(r.json()["entry"]["seq"])
    assert seqs == [1, 2, 3, 4]
    changes = s.client.get(s.ns_url("changes"), params={"cursor": 0}).json()
    assert [e["seq"] for e in changes["entries"]] == [1, 2, 3, 4]
    assert changes["entries"][-1]["deleted"] is True


def test_stale_parent_is_409_with_the_current_entry(new_user):
    s = new_user()
    first = commit_file(s, "f.txt", [b"one"]).json()["entry"]
    second = commit_file(s, "f.txt", [b"two"], parent_rev=first["rev"])
    assert second.status_code == 200
    stale = commit_file(s, "f.txt", [b"three"], parent_rev=first["rev"])
    assert stale.status_code == 409
    body = stale.json()
    assert body["error"] == "conflict"
    assert body["current"]["rev"] == second.json()["entry"]["rev"]
    # creating over an existing file without a parent is also a conflict
    assert commit_file(s, "f.txt", [b"four"]).status_code == 409
    # deleting with a stale parent too
    r = s.client.post(
        s.ns_url("commit"), json={"path": "f.txt", "action": "delete", "parent_rev": first["rev"]}
    )
    assert r.status_code == 409


def test_missing_chunks_are_listed_then_the_retry_succeeds(new_user):
    s = new_user()
    have, lack1, lack2 = b"have", os.urandom(50), os.urandom(60)
    put(s, have)
    op = {
        "path": "x.bin",
        "action": "file",
        "size": 4 + 50 + 60,
        "blocks": [{"id": cid(c), "size": len(c)} for c in (have, lack1, lack2)],
    }
    r = s.client.post(s.ns_url("commit"), json=op)
    assert r.status_code == 412
    assert r.json()["missing"] == [cid(lack1), cid(lack2)]
    put(s, lack1)
    put(s, lack2)
    assert s.client.post(s.ns_url("commit"), json=op).status_code == 200


def test_sizes_must_match_the_chunks(new_user):
    s = new_user()
    put(s, b"12345")
    op = {"path": "x", "action": "file", "size": 6, "blocks": [{"id": cid(b"12345"), "size": 5}]}
    r = s.client.post(s.ns_url("commit"), json=op)
    assert r.status_code == 400 and r.json()["error"] == "invalid_commit"
    op = {"path": "x", "action": "file", "size": 4, "blocks": [{"id": cid(b"12345"), "size": 4}]}
    assert s.client.post(s.ns_url("commit"), json=op).status_code == 400


def test_a_retried_commit_with_the_same_op_id_is_applied_once(new_user):
    s = new_user()
    first = commit_file(s, "once.txt", [b"data"], op_id="op-42")
    again = commit_file(s, "once.txt", [b"data"], op_id="op-42")
    assert first.status_code == again.status_code == 200
    assert again.json()["replayed"] is True
    assert again.json()["entry"]["rev"] == first.json()["entry"]["rev"]
    hist = s.client.get(s.ns_url("history"), params={"path": "once.txt"}).json()["entries"]
    assert len(hist) == 1


def test_batch_commit_results_per_op(new_user):
    s = new_user()
    put(s, b"a")
    ops = [
        {"path": "d", "action": "dir"},
        {"path": "d/a", "action": "file", "size": 1, "blocks": [{"id": cid(b"a"), "size": 1}]},
        {"path": "d/b", "action": "file", "size": 1, "blocks": [{"id": cid(b"b"), "size": 1}]},
        {"path": "d", "action": "dir"},  # already created above: conflict
    ]
    r = s.client.post(s.ns_url("commit_batch"), json={"ops": ops})
    assert r.status_code == 200
    assert [x["status"] for x in r.json()["results"]] == ["ok", "ok", "missing", "conflict"]


def test_list_history_and_restore(new_user):
    s = new_user()
    s.client.post(s.ns_url("commit"), json={"path": "d", "action": "dir"})
    v1 = commit_file(s, "d/f.txt", [b"version one"]).json()["entry"]
    v2 = commit_file(s, "d/f.txt", [b"version two"], parent_rev=v1["rev"]).json()["entry"]
    g = commit_file(s, "d/g.txt", [b"g"]).json()["entry"]
    commit_file(s, "top.txt", [b"t"])

    root = s.client.get(s.ns_url("list")).json()["entries"]
    assert [e["path"] for e in root] == ["d", "top.txt"]
    inside = s.client.get(s.ns_url("list"), params={"path": "d"}).json()["entries"]
    assert [e["path"] for e in inside] == ["d/f.txt", "d/g.txt"]

    hist = s.client.get(s.ns_url("history"), params={"path": "d/f.txt"}).json()["entries"]
    assert [e["rev"] for e in hist] == [v2["rev"], v1["rev"]]

    r = s.client.post(s.ns_url("restore"), json={"path": "d/f.txt", "rev": v1["rev"]})
    assert r.status_code == 200
    restored = r.json()["entry"]
    assert restored["rev"] > v2["rev"]
    assert restored["blocks"] == v1["blocks"] and restored["prev_rev"] == v2["rev"]
    got = s.client.get(s.ns_url(f"chunks/{restored['blocks'][0]['id']}")).content
    assert got == b"version one"

    # restore after delete brings the file back
    s.client.post(
        s.ns_url("commit"), json={"path": "d/g.txt", "action": "delete", "parent_rev": g["rev"]}
    )
    assert [
        e["path"] for e in s.client.get(s.ns_url("list"), params={"path": "d"}).json()["entries"]
    ] == ["d/f.txt"]
    assert (
        s.client.post(s.ns_url("restore"), json={"path": "d/g.txt", "rev": g["rev"]}).status_code
        == 200
    )


def test_unknown_revision_and_unknown_paths_are_404(new_user):
    s = new_user()
    v1 = commit_file(s, "f", [b"1"]).json()["entry"]
    assert s.client.post(s.ns_url("restore"), json={"path": "f", "rev": 999}).status_code == 404
    r = s.client.post(s.ns_url("restore"), json={"path": "other", "rev": v1["rev"]})
    assert r.status_code == 404 and r.json()["error"] == "unknown_revision"
    assert s.client.get(s.ns_url("history"), params={"path": "nope"}).status_code == 404
    assert s.client.get(s.ns_url("list"), params={"path": "nope"}).status_code == 404
    assert s.client.get(s.ns_url("list"), params={"path": "f"}).status_code == 400
    assert s.client.get(s.ns_url("entry"), params={"path": "nope"}).status_code == 404


def test_tree_pages_in_path_order(new_user):
    s = new_user()
    put(s, b"z")
    ops = [
        {"path": f"f{i:03}", "action": "file", "size": 1, "blocks": [{"id": cid(b"z"), "size": 1}]}
        for i in range(25)
    ]
    s.client.post(s.ns_url("commit_batch"), json={"ops": ops})
    seen, after = [], ""
    while True:
        page = s.client.get(s.ns_url("tree"), params={"after": after, "limit": 10}).json()
        assert page["cursor"] == 25
        seen += [e["path"] for e in page["entries"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert seen == [f"f{i:03}" for i in range(25)]


def test_live_entries_always_form_a_tree(new_user):
    # found by the simulation (seeds 7001, 7011): a folder replaced by a file on one
    # device while another device added to it left a file with children on the server
    s = new_user()
    folder = s.client.post(s.ns_url("commit"), json={"path": "t", "action": "dir"}).json()
    child = commit_file(s, "t/one", [b"1"]).json()["entry"]
    over = commit_file(s, "t", [b"a file now"], parent_rev=folder["entry"]["rev"])
    assert over.status_code == 409 and over.json()["current"]["path"] == "t/one"
    r = s.client.post(
        s.ns_url("commit"), json={"path": "t/one", "action": "delete", "parent_rev": child["rev"]}
    )
    assert r.status_code == 200
    file_now = commit_file(s, "t", [b"a file now"], parent_rev=folder["entry"]["rev"])
    assert file_now.status_code == 200, file_now.text
    below = commit_file(s, "t/two", [b"2"])
    assert below.status_code == 409 and below.json()["current"]["path"] == "t"
    deeper = s.client.post(s.ns_url("commit"), json={"path": "t/x/y", "action": "dir"})
    assert deeper.status_code == 409
    assert commit_file(s, "t0", [b"a sibling is fine"]).status_code == 200
    assert commit_file(s, "u/v", [b"a missing folder is implied"]).status_code == 200
