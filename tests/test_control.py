"""The control socket: real Unix sockets in temp dirs, served by plain handler functions."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading

import pytest

from syncd.control import (
    NOT_RUNNING,
    ControlServer,
    DaemonNotRunning,
    control_request,
)
from syncd.errors import SyncdError


def echo(cmd: str, args: dict) -> dict:
    if cmd == "echo":
        return {"args": args}
    if cmd == "refuse":
        raise SyncdError("no such file: x")
    if cmd == "crash":
        raise ValueError("boom")
    if cmd == "nothing":
        return None  # type: ignore[return-value]
    if cmd == "not-json":
        return {"obj": object()}
    if cmd == "not-a-dict":
        return [1, 2]  # type: ignore[return-value]
    raise SyncdError(f"unknown command {cmd!r}")


@pytest.fixture
def sock(tmp_path):
    return tmp_path / "control.sock"


@pytest.fixture
def served(sock):
    with ControlServer(sock, echo) as server:
        yield server


def raw_exchange(path, *lines: bytes) -> list[dict]:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
        s.sendall(b"".join(lines))
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return [json.loads(line) for line in data.splitlines()]


def test_request_and_result(served, sock):
    assert control_request(sock, "echo", path="a/b", rev=None) == {
        "args": {"path": "a/b", "rev": None}
    }
    assert control_request(sock, "nothing") == {}


def test_socket_is_0600_from_the_start(served, sock):
    st = os.lstat(sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600


def test_handler_errors_become_error_responses_and_the_server_lives_on(served, sock):
    with pytest.raises(SyncdError, match=r"^no such file: x$"):
        control_request(sock, "refuse")
    with pytest.raises(SyncdError, match=r"internal error.*ValueError: boom"):
        control_request(sock, "crash")
    with pytest.raises(SyncdError, match="not JSON"):
        control_request(sock, "not-json")
    with pytest.raises(SyncdError, match="not an object"):
        control_request(sock, "not-a-dict")
    with pytest.raises(SyncdError, match="unknown command 'nope'"):
        control_request(sock, "nope")
    assert control_request(sock, "echo", x=1) == {"args": {"x": 1}}


def test_wire_format_and_several_requests_per_connection(served, sock):
    answers = raw_exchange(
        sock,
        b'{"cmd": "echo", "args": {"a": 1}}\n',
        b"this is not json\n",
        b'["cmd"]\n',
        b'{"cmd": "echo", "args": 5}\n',
        b'{"cmd": "refuse"}\n',
        b'{"cmd": "echo"}\n',
    )
    assert answers[0] == {"ok": True, "result": {"args": {"a": 1}}}
    assert [a["ok"] for a in answers[1:5]] == [False] * 4
    assert "malformed" in answers[1]["error"] and "malformed" in answers[3]["error"]
    assert answers[4] == {"ok": False, "error": "no such file: x"}
    assert answers[5] == {"ok": True, "result": {"args": {}}}


def test_nothing_listening_is_daemon_not_running(sock):
    with pytest.raises(DaemonNotRunning) as err:
        control_request(sock, "status")
    assert err.value.exit_code == 3 and str(err.value) == NOT_RUNNING
    # a socket file left behind by a dead daemon: connection refused, same answer
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock))
    stale.close()
    with pytest.raises(DaemonNotRunning):
        control_request(sock, "status")


def test_a_stale_socket_file_is_replaced_and_close_removes_it(sock):
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock))
    stale.close()
    server = ControlServer(sock, echo).start()
    assert control_request(sock, "echo") == {"args": {}}
    server.close()
    assert not sock.exists()
    with pytest.raises(DaemonNotRunning):
        control_request(sock, "echo")
    server.close()  # idempotent


def test_a_live_server_or_a_regular_file_is_never_replaced(served, sock, tmp_path):
    with pytest.raises(SyncdError, match="already listens"):
        ControlServer(sock, echo).start()
    assert control_request(sock, "echo") == {"args": {}}
    plain = tmp_path / "plain"
    plain.write_text("keep me")
    with pytest.raises(SyncdError, match="not a socket"):
        ControlServer(plain, echo).start()
    assert plain.read_text() == "keep me"


def test_a_slow_command_does_not_block_others(sock):
    entered, release = threading.Event(), threading.Event()

    def handler(cmd: str, args: dict) -> dict:
        if cmd == "slow":
            entered.set()
            release.wait()
            return {"slow": True}
        return {"fast": True}

    results: list[dict] = []
    with ControlServer(sock, handler):
        t = threading.Thread(target=lambda: results.append(control_request(sock, "slow")))
        t.start()
        entered.wait()
        assert control_request(sock, "fast") == {"fast": True}
        release.set()
        t.join()
    assert results == [{"slow": True}]


def test_no_answer_within_the_timeout_is_an_error(sock):
    release = threading.Event()
    with ControlServer(sock, lambda cmd, args: release.wait() and {}):
        with pytest.raises(SyncdError, match="did not answer 'x' within"):
            control_request(sock, "x", timeout=0.2)
        release.set()


def test_close_ends_open_connections(sock):
    server = ControlServer(sock, echo).start()
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock))
        s.sendall(b'{"cmd": "echo"}\n')
        assert s.recv(100).endswith(b"\n")
        server.close()
        assert s.recv(100) == b""


def test_socket_paths_longer_than_sun_path_work(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = deep / "control.sock"
    assert len(os.fsencode(path)) > 108
    with ControlServer(path, echo):
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
        assert control_request(path, "echo", n=1) == {"args": {"n": 1}}
    assert not path.exists()


def test_an_overlong_request_is_refused(served, sock):
    from syncd.control import MAX_LINE

    answers = raw_exchange(sock, b'{"cmd": "echo", "args": {"x": "' + b"a" * MAX_LINE + b'"}}\n')
    assert answers == [{"ok": False, "error": "request too long"}]
    assert control_request(sock, "echo") == {"args": {}}
