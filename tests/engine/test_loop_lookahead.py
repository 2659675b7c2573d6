"""The loop's look ahead in the journal: only after news of it, read only, never fatal."""

from __future__ import annotations

from pathlib import Path

from syncd.transport.client import ServerClient
from tests.support.loops import sync_loop
from tests.support.server import ServerProc


def _commit(session, path: str) -> None:
    op = {"path": path, "action": "dir", "parent_rev": None, "mode": 0o755, "mtime_ns": 0}
    r = session.client.post(session.ns_url("commit_batch"), json={"ops": [{**op, "op_id": path}]})
    r.raise_for_status()


def test_it_reads_the_journal_past_the_last_pull_only_after_news(
    server: ServerProc, new_user, tmp_path: Path
):
    session = new_user("a")
    client = ServerClient(server.url, session.token)
    loop = sync_loop(tmp_path / "b", client, session)
    try:
        assert loop._pull_remote() is None  # the first pull: a resync from the tree
        _commit(session, "early")
        assert loop._lookahead() == []  # nothing announced yet: no request
        loop.post("remote")
        ahead = loop._lookahead()
        assert [st.path for st in ahead] == ["early"]
        assert loop.index.get("remote", "early") is None  # read only: the pull records
        assert loop._pull_remote() == {"early"}
        assert loop._lookahead() == []  # the pull took the news
    finally:
        client.close()


def test_a_server_gone_makes_it_look_ahead_at_nothing(server: ServerProc, new_user, tmp_path):
    session = new_user("a")
    good = ServerClient(server.url, session.token)
    loop = sync_loop(tmp_path / "b", good, session)
    try:
        loop._pull_remote()
    finally:
        good.close()
    loop.client = ServerClient("http://127.0.0.1:9", session.token)  # nothing listens
    loop.post("online")
    try:
        assert loop._lookahead() == []
    finally:
        loop.client.close()
