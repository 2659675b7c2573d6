"""Two real server processes on one metastore: a commit on A wakes a long-poll on B
through NATS; with NATS gone the journal still delivers, only later (D4)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.server.helpers import commit_file
from tests.support.devices import wait_for
from tests.support.server import ServerProc, Session, login


def start_pair(tmp: Path, notify_url: str) -> tuple[ServerProc, ServerProc]:
    shared = tmp / "shared"
    shared.mkdir(parents=True, exist_ok=True)
    meta = f"sqlite:///{shared / 'meta.sqlite3'}"
    extra = ["--blocks", (shared / "blocks").as_uri(), "--notify", notify_url]
    a, b = (ServerProc(tmp / n, meta_url=meta, extra_args=extra) for n in ("a", "b"))
    return a.start(), b.start()


def same_token_on(server: ServerProc, s: Session) -> Session:
    client = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {s.token}"}, timeout=90
    )
    return Session(client, s.token, s.ns, s.device_id, s.chunking)


@pytest.fixture
def users():
    """A new user logged in on A, and the same device's token used on B."""

    def make(a: ServerProc, b: ServerProc) -> tuple[Session, Session]:
        name = f"u{os.urandom(3).hex()}"
        a.adduser(name)
        sa = login(a, name, device="on-a")
        return sa, same_token_on(b, sa)

    return make


def long_poll(s: Session, cursor: int, timeout: float):
    return s.client.get(s.ns_url("changes"), params={"cursor": cursor, "timeout": timeout})


def waiters(server: ServerProc) -> int:
    return httpx.get(server.url + "/healthz?optional=notify", timeout=10).json()["waiters"]


def notify_ok(server: ServerProc) -> bool:
    return httpx.get(server.url + "/healthz", timeout=10).json()["backends"]["notify"]["ok"]


def test_commit_on_a_wakes_a_long_poll_held_on_b(tmp_path, nats_url, users):
    a, b = start_pair(tmp_path, nats_url)
    try:
        sa, sb = users(a, b)
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(long_poll, sb, 0, 60)
            wait_for(lambda: waiters(b) == 1, "the long-poll to be held on B")
            commit_file(sa, "from-a.txt", [b"hello from A"])
            r = held.result(timeout=90)
        assert r.json()["woke"] == "notify"
        assert [e["path"] for e in r.json()["entries"]] == ["from-a.txt"]
    finally:
        a.stop()
        b.stop()


def test_without_a_broker_b_only_learns_at_its_timeout(tmp_path, users):
    """The control: the in-process notifier cannot cross processes."""
    a, b = start_pair(tmp_path, "memory://")
    try:
        sa, sb = users(a, b)
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(long_poll, sb, 0, 1.0)
            wait_for(lambda: waiters(b) == 1, "the long-poll to be held on B")
            commit_file(sa, "from-a.txt", [b"hello"])
            r = held.result(timeout=60)
        assert r.json()["woke"] == "timeout"
        assert [e["path"] for e in r.json()["entries"]] == ["from-a.txt"]
    finally:
        a.stop()
        b.stop()


def test_nats_outage_only_delays(tmp_path, private_nats, users):
    private_nats.start()
    a, b = start_pair(tmp_path, private_nats.url + "?subject=outage&reconnect_wait=0.2")
    try:
        sa, sb = users(a, b)
        private_nats.stop()
        wait_for(lambda: not notify_ok(a) and not notify_ok(b), "both to see NATS gone")
        health = httpx.get(b.url + "/healthz", timeout=10)
        assert health.status_code == 503 and health.json()["failed"] == ["notify"]
        lenient = httpx.get(b.url + "/healthz?optional=notify", timeout=10)
        assert lenient.status_code == 200  # what the load balancer asks: B stays in rotation

        # Committed on A during the outage: B's long-poll still gets it, at its timeout.
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(long_poll, sb, 0, 1.0)
            wait_for(lambda: waiters(b) == 1, "the long-poll to be held on B")
            commit_file(sa, "during-outage.txt", [b"one"])
            r = held.result(timeout=60)
        assert r.json()["woke"] == "timeout"
        assert [e["path"] for e in r.json()["entries"]] == ["during-outage.txt"]

        # A long-poll held across the outage's end is woken when NATS returns.
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(long_poll, sb, 1, 120)
            wait_for(lambda: waiters(b) == 1, "the long-poll to be held on B")
            commit_file(sa, "just-before-return.txt", [b"two"])
            private_nats.start()
            r = held.result(timeout=150)
        assert r.json()["woke"] == "notify"
        assert [e["path"] for e in r.json()["entries"]] == ["just-before-return.txt"]

        # And notifications flow again.
        wait_for(lambda: notify_ok(a) and notify_ok(b), "both to reconnect")
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(long_poll, sb, 2, 60)
            wait_for(lambda: waiters(b) == 1, "the long-poll to be held on B")
            commit_file(sa, "after.txt", [b"three"])
            r = held.result(timeout=90)
        assert r.json()["woke"] == "notify"
        assert [e["path"] for e in r.json()["entries"]] == ["after.txt"]
    finally:
        a.stop()
        b.stop()
