"""The change-feed thread against a real server: wakes, outages, a journal reset."""

from __future__ import annotations

import queue

import blake3
import pytest

from syncd.transport import Backoff, ServerClient
from syncd.transport.feed import ChangeFeed
from tests.support.server import ServerProc


@pytest.fixture
def own(tmp_path):
    proc = ServerProc(tmp_path / "data").start()
    proc.adduser("feeder")
    info = ServerClient(proc.url).login("feeder", "correct horse", "f")
    client = ServerClient(proc.url, info["token"], attempts=1)
    yield proc, client, info["namespace"], info["token"]
    client.close()
    proc.stop()


def commit(client: ServerClient, ns: int, path: str) -> None:
    data = path.encode()
    cid = blake3.blake3(data).hexdigest()
    client.put_chunks(ns, [(cid, data)])
    op = {
        "path": path,
        "action": "file",
        "size": len(data),
        "blocks": [{"id": cid, "size": len(data)}],
    }
    assert client.commit_batch(ns, [op])[0]["status"] == "ok"


def test_feed_wakes_on_commits_reports_outages_and_recovers(own):
    proc, client, ns, token = own
    events: queue.Queue = queue.Queue()
    feed = ChangeFeed(
        ServerClient(proc.url, token, attempts=1),
        ns,
        0,
        on_page=lambda page: events.put(("page", [e["path"] for e in page.entries])),
        on_error=lambda exc, delay: events.put(("error", type(exc).__name__)),
        poll_timeout=0.5,
        backoff=Backoff(base=0.05, cap=0.2),
    )
    feed.start()
    try:
        commit(client, ns, "one.txt")
        assert events.get(timeout=30) == ("page", ["one.txt"])
        proc.stop()
        assert events.get(timeout=30) == ("error", "Offline")
        proc.start()
        while (event := events.get(timeout=30))[0] == "error":
            pass
        assert event == ("page", [])  # reachable again: the loop is woken to retry
        assert feed.cursor == 1
        # a journal behind the feed's cursor (server data restored): follow it from 0
        feed.cursor = 99
        while (event := events.get(timeout=30)) != ("page", []):
            pass
        assert feed.cursor == 0
    finally:
        feed.stop()


def test_a_peeking_feed_wakes_with_the_journals_end_and_no_entries(own):
    _proc, client, ns, token = own
    start = client.changes(ns, 0).cursor
    events: queue.Queue = queue.Queue()
    feed = ChangeFeed(
        ServerClient(_proc.url, token, attempts=1),
        ns,
        start,
        on_page=lambda page: events.put((page.cursor, page.entries)),
        on_error=lambda exc, delay: events.put(("error", type(exc).__name__)),
        poll_timeout=5,
        peek=True,
    )
    feed.start()
    try:
        commit(client, ns, "peeked-1.txt")
        cursor, entries = events.get(timeout=30)
        assert entries == [] and cursor == start + 1 == feed.cursor
        commit(client, ns, "peeked-2.txt")
        commit(client, ns, "peeked-3.txt")
        while feed.cursor < start + 3:
            cursor, entries = events.get(timeout=30)
            assert entries == []
        assert feed.cursor == start + 3
    finally:
        feed.stop()
