"""One conformance suite for every metastore: SQLite, PostgreSQL, sharded PostgreSQL."""

from __future__ import annotations

import threading

import blake3
import pytest

from syncd.server.metastore import CommitOp, InvalidCommit

NOW = 1_700_000_000.0


def cid(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def file_op(path: str, chunks: list[bytes], parent_rev=None, op_id=None) -> CommitOp:
    return CommitOp(
        path=path,
        action="file",
        parent_rev=parent_rev,
        size=sum(len(c) for c in chunks),
        blocks=tuple((cid(c), len(c)) for c in chunks),
        op_id=op_id,
    )


def one(store, ns: int, op: CommitOp):
    (result,) = store.commit(ns, [op], "alice", "laptop", NOW)
    return result


def test_users_and_devices(store, user):
    alice = user()
    assert store.user_by_name(alice.name) == alice
    assert store.user_by_name("nobody-at-all") is None
    with pytest.raises(ValueError, match="already exists"):
        store.create_user(alice.name, None, "h", (1024, 4096, 16384))
    d1 = store.add_device(alice.id, "laptop", "tok1-" + alice.name, NOW)
    d2 = store.add_device(alice.id, "phone", "tok2-" + alice.name, NOW + 1)
    found = store.device_by_token("tok1-" + alice.name)
    assert found is not None and found[0] == d1 and found[1] == alice
    assert [d.name for d in store.list_devices(alice.id)] == ["laptop", "phone"]
    assert store.revoke_device(alice.id, d2.id, NOW + 2)
    assert not store.revoke_device(alice.id, d2.id, NOW + 3)  # already revoked
    assert store.device_by_token("tok2-" + alice.name) is None
    assert store.list_devices(alice.id)[1].revoked == NOW + 2
    bob = user()
    assert not store.revoke_device(bob.id, d1.id, NOW)  # not bob's device


def test_namespaces_and_access(store, user):
    alice, bob = user(), user()
    ns = store.namespace(alice.namespace)
    assert ns is not None and ns.owner == alice.id and ns.seq == 0
    assert (ns.chunk_min, ns.chunk_avg, ns.chunk_max) == (1024, 4096, 16384)
    assert store.can_access(alice.id, alice.namespace)
    assert not store.can_access(bob.id, alice.namespace)
    assert store.namespace(10**12) is None
    assert not store.can_access(alice.id, 10**12)


def test_chunk_ownership_is_per_namespace(store, user):
    a, b = user().namespace, user().namespace
    x, y = cid(b"x-%d" % a), cid(b"y-%d" % a)
    assert store.missing_chunks(a, [x, y, x]) == [x, y]
    store.add_chunks(a, [(x, 100), (y, 200)])
    store.add_chunks(a, [(x, 100)])  # idempotent
    assert store.missing_chunks(a, [x, y]) == []
    assert store.missing_chunks(b, [x]) == [x]  # D3: b never uploaded it
    assert store.owns_chunk(a, x) == 100 and store.owns_chunk(b, x) is None
    assert store.stored_chunks([x, y, cid(b"never")]) == {x, y}
    assert store.chunk_stored(x) and not store.chunk_stored(cid(b"never"))
    store.add_chunks(b, [(x, 100)])
    assert store.stored_bytes(a) == 300 and store.stored_bytes(b) == 100


def test_commit_needs_owned_chunks_and_true_sizes(store, user):
    ns = user().namespace
    data = [b"one" * 50, b"two" * 70]
    result = one(store, ns, file_op("f.txt", data))
    assert result.status == "missing" and set(result.missing) == {cid(d) for d in data}
    store.add_chunks(ns, [(cid(d), len(d)) for d in data])
    lying = CommitOp("g.txt", "file", None, size=999, blocks=((cid(data[0]), len(data[0])),))
    with pytest.raises(InvalidCommit):
        one(store, ns, lying)
    assert store.namespace(ns).seq == 0  # nothing written
    result = one(store, ns, file_op("f.txt", data))
    assert result.status == "ok" and result.entry.seq == 1
    e = store.current(ns, "f.txt")
    assert e == result.entry and e.size == 360 and e.blocks == tuple((cid(d), len(d)) for d in data)
    assert (e.user, e.device, e.server_time, e.prev_rev) == ("alice", "laptop", NOW, None)


def test_parent_rev_rules(store, user):
    ns = user().namespace
    assert one(store, ns, CommitOp("d", "dir", None)).status == "ok"  # rev 1
    stale = one(store, ns, CommitOp("d", "dir", None))
    assert stale.status == "conflict" and stale.current.rev == 1
    assert one(store, ns, CommitOp("d", "delete", 7)).status == "conflict"
    gone = one(store, ns, CommitOp("d", "delete", 1))
    assert gone.status == "ok" and gone.entry.deleted and gone.entry.kind == "dir"
    assert one(store, ns, CommitOp("d", "delete", 2)).status == "conflict"  # nothing live
    assert one(store, ns, CommitOp("d", "dir", 1)).status == "conflict"  # 2 is current
    back = one(store, ns, CommitOp("d", "dir", 2))
    assert back.status == "ok" and back.entry.prev_rev == 2
    assert one(store, ns, CommitOp("new", "dir", 0)).status == "ok"
    assert one(store, ns, CommitOp("other", "dir", 5)).status == "conflict"


def test_same_op_id_is_applied_once(store, user):
    ns = user().namespace
    first = one(store, ns, CommitOp("a", "dir", None, op_id="op-1"))
    again = one(store, ns, CommitOp("a", "dir", None, op_id="op-1"))
    assert again.status == "ok" and again.replayed and again.entry == first.entry
    assert store.namespace(ns).seq == 1


def test_batch_results_are_per_op(store, user):
    ns = user().namespace
    ops = [CommitOp("a", "dir", None), CommitOp("a", "dir", None), CommitOp("b", "dir", None)]
    results = store.commit(ns, ops, "alice", "laptop", NOW)
    assert [r.status for r in results] == ["ok", "conflict", "ok"]
    assert [r.entry.seq for r in results if r.entry] == [1, 2]
    assert store.commit(ns, [], "alice", "laptop", NOW) == []


def test_sequence_is_gap_free_under_concurrent_committers(store, user):
    ns = user().namespace
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for i in range(15):
                assert one(store, ns, CommitOp(f"w{w}/{i}", "dir", None)).status == "ok"
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    seqs = [e.seq for e in store.changes(ns, 0, 1000)]
    assert seqs == list(range(1, 91)) and store.namespace(ns).seq == 90


def test_concurrent_writers_of_one_revision_one_wins(store, user):
    ns = user().namespace
    one(store, ns, CommitOp("x", "dir", None))
    wins: list[str] = []

    def writer(w: int) -> None:
        if one(store, ns, CommitOp("x", "delete", 1)).status == "ok":
            wins.append(str(w))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and store.namespace(ns).seq == 2


def test_changes_pages_from_a_cursor(store, user):
    ns = user().namespace
    store.commit(ns, [CommitOp(f"p{i}", "dir", None) for i in range(7)], "a", "d", NOW)
    assert [e.seq for e in store.changes(ns, 0, 3)] == [1, 2, 3]
    assert [e.seq for e in store.changes(ns, 3, 10)] == [4, 5, 6, 7]
    assert store.changes(ns, 7, 10) == []


def test_folders_tree_history_in_byte_order(store, user):
    ns = user().namespace
    names = ["docs", "docs/B.txt", "docs/a.txt", "docs/é.txt", "docs/z", "docs/z/deep", "Zed"]
    chunk = b"content"
    store.add_chunks(ns, [(cid(chunk), len(chunk))])
    for name in names:
        op = CommitOp(name, "dir", None) if "." not in name else file_op(name, [chunk])
        assert one(store, ns, op).status == "ok"
    rev = store.current(ns, "docs/a.txt").rev
    one(store, ns, CommitOp("docs/a.txt", "delete", rev))
    listed = [e.path for e in store.list_folder(ns, "docs")]
    assert listed == ["docs/B.txt", "docs/z", "docs/é.txt"]  # UTF-8 byte order, no deleted
    assert [e.path for e in store.list_folder(ns, "")] == ["Zed", "docs"]
    first = store.tree(ns, "", 3)
    rest = store.tree(ns, first[-1].path, 100)
    assert [e.path for e in first + rest] == sorted(
        (n for n in names if n != "docs/a.txt"), key=str.encode
    )
    history = store.history(ns, "docs/a.txt", 10)
    assert [e.deleted for e in history] == [True, False]
    assert store.entry_at(ns, rev) == history[1]
    assert store.entry_at(ns, 999) is None and store.current(ns, "nope") is None


def test_live_entries_always_form_a_tree(store, user):
    """Nothing below a live file; no file over live entries — also within one batch."""
    ns = user().namespace
    data = [b"tree-%d" % ns]
    store.add_chunks(ns, [(cid(data[0]), len(data[0]))])
    ok = store.commit(ns, [CommitOp("t", "dir", None), file_op("t/x", data)], "a", "l", NOW)
    assert [r.status for r in ok] == ["ok", "ok"]
    folder, child = (r.entry for r in ok)
    over = one(store, ns, file_op("t", data, parent_rev=folder.rev))
    assert over.status == "conflict" and over.current.path == "t/x"
    # in one batch: the child's delete, then the file over the emptied folder, then
    # something below that file (refused), then a sibling (fine)
    batch = [
        CommitOp("t/x", "delete", child.rev),
        file_op("t", data, parent_rev=folder.rev),
        CommitOp("t/y/z", "dir", None),
        file_op("t0", data),
    ]
    results = store.commit(ns, batch, "a", "l", NOW)
    assert [r.status for r in results] == ["ok", "ok", "conflict", "ok"]
    assert results[2].current.path == "t"
    # a folder implied only by what lies below it counts too
    assert one(store, ns, file_op("u/v/w", data)).status == "ok"
    assert one(store, ns, file_op("u", data)).status == "conflict"
