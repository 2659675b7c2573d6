"""The client command line: link against a real server, the daemon plumbing, and every
control command against a real control socket served by a plain handler function."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncd.cli import format_status, human_size, main, to_sync_path
from syncd.control import NOT_RUNNING, ControlServer
from syncd.daemonize import (
    AlreadyRunning,
    PidFile,
    redact,
    run_foreground,
    setup_logging,
    stop_daemon,
    use_daemon_allocator,
)
from syncd.errors import InvalidPath
from syncd.home import ClientConfig, ClientHome

HEADLESS = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def syncd(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "syncd", "--home", str(home), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **HEADLESS},
        timeout=60,
    )


def cli(home: Path, *args: str):
    return CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def linked_home(tmp_path: Path) -> ClientHome:
    folder = tmp_path / "Sync"
    folder.mkdir(exist_ok=True)
    home = ClientHome(tmp_path / "home")
    home.save_config(ClientConfig("http://127.0.0.1:1", "ann", "dev", 1, 1, str(folder), {}))
    return home


# -- link against a real server ------------------------------------------------------------
def test_link_logs_in_writes_config_and_falls_back_to_a_token_file(server, tmp_path):
    server.adduser("linker", "pw one")
    home, folder = tmp_path / "state" / "home", tmp_path / "new" / "Sync"
    out = syncd(home, "link", server.url + "/", "--user", "linker", "--folder", str(folder),
                "--device", "desk", "--password-stdin", stdin="pw one\n")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert folder.is_dir()
    assert mode(home) == 0o700
    cfg = json.loads((home / "config.json").read_text())
    assert cfg["server_url"] == server.url and cfg["folder"] == str(folder.resolve())
    assert (cfg["user"], cfg["device"]) == ("linker", "desk")
    assert isinstance(cfg["device_id"], int) and isinstance(cfg["namespace"], int)
    assert set(cfg["chunking"]) == {"min", "avg", "max"}
    token = home / "token"
    assert mode(token) == 0o600 and mode(home / "config.json") == 0o600
    assert str(token) in out.stderr and "keyring" in out.stderr
    secret = token.read_text().strip()
    assert secret not in out.stdout + out.stderr + (home / "config.json").read_text()
    assert "syncd start" in out.stdout

    # linking again (another folder) replaces the config and forgets the old index
    (home / "index.sqlite3").write_text("old index")
    other = tmp_path / "Other"
    out = syncd(home, "link", server.url, "--user", "linker", "--folder", str(other),
                "--password-stdin", stdin="pw one\n")  # fmt: skip
    assert out.returncode == 0, out.stderr
    cfg = json.loads((home / "config.json").read_text())
    assert cfg["device"] == socket.gethostname() and cfg["folder"] == str(other.resolve())
    assert not (home / "index.sqlite3").exists()
    assert token.read_text().strip() != secret


def test_link_with_a_wrong_password_changes_nothing(server, tmp_path):
    server.adduser("wrongpw", "right")
    home, folder = tmp_path / "home", tmp_path / "Sync"
    out = syncd(home, "link", server.url, "--user", "wrongpw", "--folder", str(folder),
                "--password-stdin", stdin="wrong\n")  # fmt: skip
    assert out.returncode == 4
    assert "wrong user name or password" in out.stderr
    assert not folder.exists() and not (home / "config.json").exists()


def test_link_refuses_a_state_dir_inside_the_sync_folder(tmp_path):
    r = cli(tmp_path / "Sync" / ".state", "link", "http://127.0.0.1:1", "--user", "a",
            "--folder", str(tmp_path / "Sync"), "--password-stdin")  # fmt: skip
    assert r.exit_code == 1 and "must not be inside the sync folder" in r.stderr


def test_link_unreachable_server(tmp_path):
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{port.getsockname()[1]}"
    port.close()
    r = CliRunner().invoke(
        main,
        ["--home", str(tmp_path / "h"), "link", url, "--user", "a", "--folder",
         str(tmp_path / "S"), "--password-stdin"],
        input="pw\n",
    )  # fmt: skip
    assert r.exit_code == 1 and "cannot reach the server" in r.stderr


# -- no daemon -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [["status"], ["status", "--json"], ["pause"], ["resume"], ["ls"], ["ls", "docs"],
     ["history", "a.txt"], ["restore", "a.txt"], ["conflicts"], ["devices"],
     ["devices", "revoke", "2"]],
    ids=lambda a: " ".join(a),
)  # fmt: skip
def test_without_a_daemon_commands_say_so_and_exit_3(tmp_path, args):
    r = cli(tmp_path / "nohome", *args)
    assert r.exit_code == 3
    assert NOT_RUNNING in r.stderr
    assert not (tmp_path / "nohome").exists()  # asking does not create anything


def test_status_without_a_daemon_through_the_real_entry_point(tmp_path):
    out = syncd(tmp_path / "h", "status")
    assert out.returncode == 3
    assert out.stderr.strip() == f"error: {NOT_RUNNING}"


def test_syncd_home_environment_variable_selects_the_home(tmp_path):
    home = linked_home(tmp_path)
    with ControlServer(home.socket_path, lambda cmd, args: {"state": "paused"}):
        r = CliRunner().invoke(main, ["status"], env={"SYNCD_HOME": str(home.root)})
    assert r.exit_code == 0 and r.stdout.startswith("Paused")


def test_stop_without_a_daemon_is_a_no_op(tmp_path):
    r = cli(tmp_path / "h", "stop")
    assert r.exit_code == 0 and "not running" in r.stdout


def test_start_needs_a_linked_device(tmp_path):
    r = cli(tmp_path / "h", "start")
    assert r.exit_code == 1 and "not linked" in r.stderr and "syncd link" in r.stderr


# -- control commands against a real socket -----------------------------------------------
class Daemonish:
    """The handler side of the control socket, recording what the CLI asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, cmd: str, args: dict) -> dict:
        from syncd.errors import SyncdError

        self.calls.append((cmd, args))
        entry = {"path": "docs/a.txt", "name": "a.txt", "kind": "file", "is_folder": False,
                 "size": 1500, "mtime_ns": 1_700_000_000 * 10**9, "rev": 9, "deleted": False,
                 "device": "desk", "server_time": 1_700_000_000.0}  # fmt: skip
        if cmd == "status":
            return {"state": "up to date", "last_sync": None, "problems": []}
        if cmd in ("pause", "resume", "revoke"):
            return {}
        if cmd == "ls":
            folder = {**entry, "path": "docs/sub", "name": "sub", "kind": "dir", "is_folder": True}
            gone = {**entry, "name": "gone.txt", "deleted": True}
            return {"entries": [entry, folder, gone]}
        if cmd == "history":
            return {"entries": [{**entry, "rev": 9}, {**entry, "rev": 4, "deleted": True}]}
        if cmd == "restore":
            if args["path"] == "missing.txt":
                raise SyncdError("missing.txt has no earlier revision to restore")
            return {"entry": {**entry, "rev": 10}}
        if cmd == "conflicts":
            return {"paths": ["a (conflicted copy from desk 2024-05-01).txt"]}
        if cmd == "devices":
            return {"devices": [
                {"id": 1, "name": "dev", "created": 1.7e9, "revoked": None, "current": True},
                {"id": 2, "name": "phone", "created": 1.7e9, "revoked": None, "current": False},
            ]}  # fmt: skip
        raise SyncdError(f"unknown command {cmd!r}")


@pytest.fixture
def daemonish(tmp_path):
    home = linked_home(tmp_path)
    handler = Daemonish()
    with ControlServer(home.socket_path, handler):
        yield home, handler


def test_pause_resume_and_status(daemonish):
    home, handler = daemonish
    assert cli(home.root, "pause").stdout == "Paused\n"
    assert cli(home.root, "resume").stdout == "Resumed\n"
    assert cli(home.root, "status").stdout.startswith("Up to date")
    assert json.loads(cli(home.root, "status", "--json").stdout)["state"] == "up to date"
    assert [c for c, _ in handler.calls] == ["pause", "resume", "status", "status"]


def test_paths_are_sent_as_sync_paths(daemonish, monkeypatch):
    home, handler = daemonish
    folder = Path(home.load_config().folder)
    cli(home.root, "history", str(folder / "docs" / "a.txt"))
    cli(home.root, "ls", "docs/")
    cli(home.root, "ls")
    monkeypatch.chdir(folder / ".")
    (folder / "docs").mkdir()
    monkeypatch.chdir(folder / "docs")
    cli(home.root, "restore", "a.txt", "--rev", "4")
    assert handler.calls == [
        ("history", {"path": "docs/a.txt"}),
        ("ls", {"path": "docs"}),
        ("ls", {"path": ""}),
        ("restore", {"path": "docs/a.txt", "rev": 4}),
    ]


def test_a_path_outside_the_folder_is_a_usage_error(daemonish, tmp_path):
    home, handler = daemonish
    r = cli(home.root, "history", str(tmp_path / "elsewhere.txt"))
    assert r.exit_code == 2 and "not inside the sync folder" in r.stderr
    assert handler.calls == []


def test_ls_history_restore_conflicts_output(daemonish):
    home, _ = daemonish
    lines = cli(home.root, "ls", "docs").stdout.splitlines()
    assert lines[0].endswith("sub/") and lines[1].endswith("a.txt") and "1.5 KB" in lines[1]
    assert len(lines) == 2  # deleted entries are not listed
    assert [e["name"] for e in json.loads(cli(home.root, "ls", "--json").stdout)] == [
        "a.txt",
        "sub",
    ]
    hist = cli(home.root, "history", "docs/a.txt").stdout.splitlines()
    assert hist[0].startswith("rev 9") and "(current)" in hist[0]
    assert hist[1].startswith("rev 4") and "deleted" in hist[1]
    out = cli(home.root, "restore", "docs/a.txt").stdout
    assert "Restored docs/a.txt from its previous revision (now revision 10)" in out
    assert cli(home.root, "conflicts").stdout == "a (conflicted copy from desk 2024-05-01).txt\n"


def test_daemon_errors_are_printed_with_exit_1(daemonish):
    home, _ = daemonish
    r = cli(home.root, "restore", "missing.txt")
    assert r.exit_code == 1
    assert r.stderr == "error: missing.txt has no earlier revision to restore\n"


def test_devices_and_revoke(daemonish):
    home, handler = daemonish
    lines = cli(home.root, "devices").stdout.splitlines()
    assert "dev" in lines[0] and "this device" in lines[0]
    assert "phone" in lines[1] and "active" in lines[1]
    assert cli(home.root, "devices", "revoke", "2").exit_code == 0
    assert ("revoke", {"id": 2}) in handler.calls
    r = cli(home.root, "devices", "revoke", "1")
    assert r.exit_code == 1 and "--force" in r.stderr
    assert ("revoke", {"id": 1}) not in handler.calls
    assert cli(home.root, "devices", "revoke", "1", "--force").exit_code == 0


# -- pure pieces -------------------------------------------------------------------------------
def test_to_sync_path(tmp_path):
    folder = tmp_path / "Sync"
    (folder / "docs").mkdir(parents=True)
    out = tmp_path / "out"
    out.mkdir()
    assert to_sync_path("docs/a.txt", folder, out) == "docs/a.txt"
    assert to_sync_path(str(folder / "docs" / "a.txt"), folder, out) == "docs/a.txt"
    assert to_sync_path("a.txt", folder, folder / "docs") == "docs/a.txt"
    assert to_sync_path("../b", folder, folder / "docs") == "b"
    assert to_sync_path("./c", folder, folder) == "c"
    assert to_sync_path("docs/./x//y/", folder, out) == "docs/x/y"
    assert to_sync_path(".", folder, folder, allow_root=True) == ""
    nfd = unicodedata.normalize("NFD", "café.txt")
    assert to_sync_path(nfd, folder, out) == unicodedata.normalize("NFC", "café.txt")
    link = tmp_path / "via-link"
    link.symlink_to(folder)
    assert to_sync_path(str(link / "docs" / "z"), folder, out) == "docs/z"
    for bad, cwd in [(str(out / "a"), out), ("../x", folder), ("..", folder), (".", folder)]:
        with pytest.raises(InvalidPath):
            to_sync_path(bad, folder, cwd)
    with pytest.raises(InvalidPath):
        to_sync_path("../escape", folder, out)


def test_human_size():
    assert [human_size(n) for n in (0, 999, 1000, 35_000_000, 1_200_000, 10**15)] == [
        "0 B", "999 B", "1.0 KB", "35.0 MB", "1.2 MB", "1000.0 TB",
    ]  # fmt: skip


NOON = time.mktime((2024, 5, 1, 12, 0, 0, 0, 0, -1))


@pytest.mark.parametrize(
    ("status", "headline"),
    [
        ({"state": "up to date", "last_sync": NOON - 5}, "Up to date — last sync 11:59:55"),
        ({"state": "up to date", "last_sync": None}, "Up to date"),
        (
            {"state": "syncing", "files_up": 12, "bytes_up": 35_000_000, "files_down": 3,
             "bytes_down": 1_200_000},
            "Syncing: 12 files (35.0 MB) up, 3 files (1.2 MB) down",
        ),
        ({"state": "syncing", "files_down": 1, "bytes_down": 10}, "Syncing: 1 file (10 B) down"),
        ({"state": "paused"}, "Paused"),
        (
            {"state": "offline", "offline_since": NOON - 60, "next_retry": NOON + 3.2},
            "Offline since 11:59:00, next retry in 4 s",
        ),
        (
            {"state": "error", "error": {"path": "big.iso", "reason": "disk full"}},
            "Error: big.iso — disk full",
        ),
    ],
)  # fmt: skip
def test_status_headlines(status, headline):
    assert format_status(status, NOON).splitlines()[0] == headline


def test_status_lists_skipped_paths_and_the_last_sync():
    text = format_status(
        {"state": "paused", "last_sync": NOON - 86400, "folder": "/f", "server": "http://s",
         "device": "d", "problems": [{"path": "pipe", "reason": "not a regular file"}]},
        NOON,
    )  # fmt: skip
    assert text.splitlines() == [
        "Paused",
        "Last sync: 2024-04-30 12:00:00",
        "Folder: /f",
        "Server: http://s (as device d)",
        "Skipped 1 path:",
        "  pipe — not a regular file",
    ]


# -- daemon plumbing ---------------------------------------------------------------------------
def test_a_second_pid_file_lock_is_refused(tmp_path):
    path = tmp_path / "daemon.pid"
    first, second = PidFile(path), PidFile(path)
    assert not second.is_running() and second.read_pid() is None
    with first:
        assert mode(path) == 0o600
        assert second.is_running() and second.read_pid() == os.getpid()
        with pytest.raises(AlreadyRunning, match=f"already running \\(pid {os.getpid()}\\)"):
            second.acquire()
    assert not second.is_running() and second.read_pid() is None
    second.acquire()
    second.release()


def test_a_lock_held_by_another_process(tmp_path):
    path = tmp_path / "daemon.pid"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from syncd.daemonize import PidFile; "
         "from pathlib import Path; PidFile(Path(sys.argv[1])).acquire(); print(1, flush=True); "
         "time.sleep(120)", str(path)],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"1\n"
        with pytest.raises(AlreadyRunning):
            PidFile(path).acquire()
        home = ClientHome(tmp_path)
        # no control socket: stop falls back to SIGTERM and waits for the lock to go
        assert stop_daemon(home, timeout=30) == holder.pid
        assert holder.wait(10) == -signal.SIGTERM
    finally:
        holder.kill()
        holder.wait()
    PidFile(path).acquire()


def test_start_when_already_running(tmp_path):
    home = linked_home(tmp_path)
    with PidFile(home.pid_path):
        r = cli(home.root, "start")
        assert r.exit_code == 0 and r.stdout == f"syncd is already running (pid {os.getpid()})\n"
        r = cli(home.root, "start", "--foreground")
        assert r.exit_code == 1 and "already running" in r.stderr


def test_stop_asks_the_daemon_over_the_socket(tmp_path):
    home = linked_home(tmp_path)
    pidfile = PidFile(home.pid_path)
    pidfile.acquire()

    def handler(cmd: str, args: dict) -> dict:
        assert cmd == "stop"
        threading.Thread(target=pidfile.release).start()
        return {}

    with ControlServer(home.socket_path, handler):
        r = cli(home.root, "stop")
    assert r.exit_code == 0 and r.stdout == f"syncd stopped (pid {os.getpid()})\n"
    assert not pidfile.is_running()


def test_run_foreground_holds_the_lock_logs_and_stops_on_sigterm(tmp_path):
    home = ClientHome(tmp_path / "home")
    seen: dict[str, object] = {}

    def target(h: ClientHome, stop: threading.Event) -> None:
        seen["locked"] = PidFile(h.pid_path).is_running()
        logging.getLogger("syncd.test").info("Authorization: Bearer abc.DEF-123")
        os.kill(os.getpid(), signal.SIGTERM)
        seen["stopped"] = stop.wait(30)

    before = signal.getsignal(signal.SIGTERM)
    run_foreground(home, target)
    assert seen == {"locked": True, "stopped": True}
    assert not PidFile(home.pid_path).is_running()
    assert signal.getsignal(signal.SIGTERM) is before
    log = home.log_path.read_text()
    assert "SIGTERM: stopping" in log and "Bearer [redacted]" in log
    assert "abc.DEF-123" not in log
    assert mode(home.log_path) == 0o600


def test_redact():
    assert redact('{"token": "abc", "user": "ann"}') == '{"token": "[redacted]", "user": "ann"}'
    assert redact("password=hunter2 next") == "password=[redacted] next"
    assert redact("bearer xyz") == "bearer [redacted]"
    assert redact("the token file /a/token") == "the token file /a/token"


def test_setup_logging_rotates(tmp_path):
    handlers = setup_logging(tmp_path / "d.log")
    try:
        assert handlers[0].maxBytes == 5 * 1024 * 1024 and handlers[0].backupCount == 3
    finally:
        for h in handlers:
            logging.getLogger().removeHandler(h)
            h.close()


def test_background_start_reports_a_daemon_that_dies(tmp_path):
    home = linked_home(tmp_path)  # linked, but no token anywhere: the daemon cannot run
    out = syncd(home.root, "start")
    assert out.returncode == 1
    assert "the daemon exited at start" in out.stderr and str(home.log_path) in out.stderr
    assert not PidFile(home.pid_path).is_running()


def _daemon_import_error() -> str | None:
    try:
        import syncd.daemon  # noqa: F401
    except ImportError as exc:
        return f"syncd.daemon does not import yet: {exc}"
    return None


@pytest.mark.skipif(_daemon_import_error() is not None, reason=str(_daemon_import_error()))
def test_start_status_stop_end_to_end(server, tmp_path):
    server.adduser("e2e-cli", "pw")
    home, folder = tmp_path / "home", tmp_path / "Sync"
    out = syncd(home, "link", server.url, "--user", "e2e-cli", "--folder", str(folder),
                "--password-stdin", stdin="pw\n")  # fmt: skip
    assert out.returncode == 0, out.stderr
    started = syncd(home, "start")
    try:
        assert started.returncode == 0, started.stderr
        assert "syncd started" in started.stdout
        assert mode(home / "control.sock") == 0o600
        assert PidFile(home / "daemon.pid").is_running()
        status = json.loads(syncd(home, "status", "--json").stdout)
        assert status["state"] in ("up to date", "syncing") and status["folder"] == str(folder)
        again = syncd(home, "start")
        assert again.returncode == 0 and "already running" in again.stdout
    finally:
        stopped = syncd(home, "stop")
    assert stopped.returncode == 0 and "syncd stopped" in stopped.stdout
    assert not PidFile(home / "daemon.pid").is_running()
    assert syncd(home, "status").returncode == 3
    assert "daemon starting" in (home / "daemon.log").read_text()


@pytest.mark.parametrize(
    ("argv", "env", "execs"),
    [
        (["python", "-m", "syncd", "--home", "/h", "start", "--foreground"], {}, True),
        (["/venv/bin/python", "/venv/bin/syncd", "start", "--foreground"], {"X": "1"}, True),
        (["python", "-m", "syncd", "start", "--foreground"], {"PYTHONMALLOC": "pymalloc"}, False),
        (["pytest", "tests/test_cli.py"], {}, False),  # the command called in-process
        (["python", "-m", "syncd", "status"], {}, False),
    ],
)
def test_the_daemon_re_execs_once_on_the_c_allocator(argv, env, execs):
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    use_daemon_allocator(argv, env, lambda exe, args, e: calls.append((exe, args, e)))
    if not execs:
        assert calls == []
        return
    new_env = {**env, "PYTHONMALLOC": "malloc"}
    assert calls == [(sys.executable, [sys.executable, *argv[1:]], new_env)]
