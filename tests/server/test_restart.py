"""Everything survives a server restart."""

from __future__ import annotations

import signal

import pytest

from tests.server.helpers import cid, commit_file
from tests.support.server import ServerProc, login


@pytest.fixture
def own_server(tmp_path):
    proc = ServerProc(tmp_path / "data").start()
    yield proc
    proc.stop()


def test_data_survives_restart(own_server):
    own_server.adduser("erin")
    s = login(own_server, "erin")
    v1 = commit_file(s, "keep.txt", [b"kept across restarts"]).json()["entry"]
    own_server.restart()
    # same token, same journal, same chunks; the sequence continues without a gap
    assert s.client.get("/v1/me").status_code == 200
    tree = s.client.get(s.ns_url("tree")).json()
    assert [e["path"] for e in tree["entries"]] == ["keep.txt"] and tree["cursor"] == 1
    assert s.client.get(s.ns_url(f"chunks/{cid(b'kept across restarts')}")).content == (
        b"kept across restarts"
    )
    v2 = commit_file(s, "keep.txt", [b"v2"], parent_rev=v1["rev"]).json()["entry"]
    assert v2["seq"] == 2


def test_sigkill_loses_nothing_committed(own_server):
    own_server.adduser("frank")
    s = login(own_server, "frank")
    for i in range(20):
        assert commit_file(s, f"f{i}", [f"content {i}".encode()]).status_code == 200
    own_server.kill()
    own_server.start()
    tree = s.client.get(s.ns_url("tree")).json()
    assert len(tree["entries"]) == 20 and tree["cursor"] == 20


def test_ctrl_c_stops_cleanly_and_requests_are_logged(own_server):
    own_server.adduser("gina")
    s = login(own_server, "gina")
    s.client.get("/v1/me")
    proc = own_server.proc
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    own_server.proc = None
    log = own_server.log_path.read_text()
    assert '"GET /v1/me HTTP/1.1" 200' in log
    assert "Finished server process" in log
    assert s.token not in log  # tokens travel in headers and are never logged
