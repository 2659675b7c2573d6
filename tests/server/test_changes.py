"""The change feed: cursors, paging, and a long-poll woken by a commit."""

from __future__ import annotations

import threading

from tests.server.helpers import commit_file
from tests.support.devices import wait_for


def _wait_for_waiters(s, n: int) -> None:
    wait_for(lambda: s.client.get("/healthz").json()["waiters"] >= n, "the long-poll to wait")


def test_long_poll_is_woken_by_a_commit(server, new_user):
    s, other = new_user(), new_user()
    result: dict = {}

    def poll() -> None:
        r = s.client.get(s.ns_url("changes"), params={"cursor": 0, "timeout": 120})
        result.update(r.json())

    thread = threading.Thread(target=poll)
    thread.start()
    _wait_for_waiters(s, 1)
    # a commit in another namespace must not wake it
    commit_file(other, "noise.txt", [b"noise"])
    commit_file(s, "hello.txt", [b"hello"])
    thread.join(150)
    assert not thread.is_alive()
    assert result["woke"] == "notify"
    assert [e["path"] for e in result["entries"]] == ["hello.txt"]
    assert result["cursor"] == 1


def test_long_poll_returns_empty_after_its_timeout(new_user):
    s = new_user()
    r = s.client.get(s.ns_url("changes"), params={"cursor": 0, "timeout": 0.2})
    assert r.json() == {"entries": [], "cursor": 0, "has_more": False, "woke": "timeout"}


def test_feed_pages_with_has_more_and_cursor(new_user):
    s = new_user()
    for i in range(5):
        s.client.post(s.ns_url("commit"), json={"path": f"d{i}", "action": "dir"})
    page = s.client.get(s.ns_url("changes"), params={"cursor": 0, "limit": 3}).json()
    assert [e["seq"] for e in page["entries"]] == [1, 2, 3]
    assert page["has_more"] is True and page["cursor"] == 3
    page = s.client.get(s.ns_url("changes"), params={"cursor": 3, "limit": 3}).json()
    assert [e["seq"] for e in page["entries"]] == [4, 5]
    assert page["has_more"] is False and page["cursor"] == 5


def test_cursor_past_the_end_is_410(new_user):
    s = new_user()
    r = s.client.get(s.ns_url("changes"), params={"cursor": 99})
    assert r.status_code == 410
    assert r.json()["error"] == "cursor_ahead"
