"""End to end: a real server and two real daemons on temp folders stay identical."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from tests.support.devices import DeviceProc, converge, syncd, wait_for

_users = itertools.count()


@pytest.fixture
def pair(server):
    """Two linked, running devices of a fresh user."""
    user = f"e2e{next(_users)}"
    server.adduser(user)
    a, b = DeviceProc("alpha", server), DeviceProc("beta", server)
    for d in (a, b):
        d.link(user)
        d.start()
    yield a, b
    for d in (a, b):
        d.cleanup()


def write(path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def test_create_edit_delete_both_ways(pair):
    a, b = pair
    write(a.folder / "hello.txt", "hello from a")
    write(a.folder / "docs/deep/note.md", "# note")
    tree = converge(a, b)
    assert tree["hello.txt"][1] == b"hello from a"
    assert tree["docs/deep/note.md"][1] == b"# note"

    write(b.folder / "hello.txt", "edited on b")
    tree = converge(a, b)
    assert tree["hello.txt"][1] == b"edited on b"

    (a.folder / "hello.txt").unlink()
    tree = converge(a, b)
    assert "hello.txt" not in tree
    assert not (b.folder / "hello.txt").exists()


def test_empty_dirs_exec_bit_and_mtime_round_trip(pair):
    a, b = pair
    (a.folder / "empty/inner").mkdir(parents=True)
    script = a.folder / "run.sh"
    write(script, "#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    os.utime(script, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    tree = converge(a, b)
    assert tree["empty/inner"] == ("dir",)
    assert tree["run.sh"][2] is True
    assert (b.folder / "run.sh").stat().st_mtime_ns == 1_600_000_000_000_000_000

    script.chmod(0o644)
    tree = converge(a, b)
    assert tree["run.sh"][2] is False
    (a.folder / "empty/inner").rmdir()
    tree = converge(a, b)
    assert "empty/inner" not in tree and tree["empty"] == ("dir",)


def test_rename_and_move_send_no_content(pair):
    a, b = pair
    big = os.urandom(300_000)
    write(a.folder / "dir/one.bin", big)
    for i in range(20):
        write(a.folder / f"dir/sub/f{i}.txt", f"file {i} " * 100)
    converge(a, b)
    sent = a.status()["uploaded_bytes_total"]
    fetched = b.status()["downloaded_bytes_total"]
    (a.folder / "dir/one.bin").rename(a.folder / "dir/renamed.bin")
    (a.folder / "dir/sub").rename(a.folder / "moved")
    tree = converge(a, b)
    assert tree["dir/renamed.bin"][1] == big
    assert tree["moved/f3.txt"][1] == b"file 3 " * 100
    assert "dir/sub" not in tree and "dir/one.bin" not in tree
    assert a.status()["uploaded_bytes_total"] == sent  # metadata only
    assert b.status()["downloaded_bytes_total"] == fetched  # B reused its own bytes


def test_a_renamed_folder_of_a_burst_of_files_sends_no_content(pair):
    """More files than the watcher's burst (200): their moves go out in parts before
    the quiet, and the folder's move must go with the first part, or A deletes the
    old folder's files on the server before it has committed all the new ones, and B
    deletes them before it could build the new ones from them."""
    a, b = pair
    files = {f"f{i:04}.bin": os.urandom(4_000) for i in range(1_000)}
    for name, data in files.items():
        write(a.folder / "old" / name, data)
    converge(a, b)
    sent = a.status()["uploaded_bytes_total"]
    fetched = b.status()["downloaded_bytes_total"]
    (a.folder / "old").rename(a.folder / "new")
    tree = converge(a, b)
    assert {p: v[1] for p, v in tree.items() if p.startswith("new/")} == {
        f"new/{n}": d for n, d in files.items()
    }
    assert not any(p.startswith("old") for p in tree)
    assert a.status()["uploaded_bytes_total"] == sent  # metadata only
    assert b.status()["downloaded_bytes_total"] == fetched  # B reused its own bytes


def test_conflict_keeps_both_versions(pair):
    a, b = pair
    write(a.folder / "report.txt", "base")
    converge(a, b)
    a.control("pause")
    b.control("pause")
    write(a.folder / "report.txt", "a's edit")
    write(b.folder / "report.txt", "b's edit")
    a.control("resume")
    wait_for(lambda: a.idle(), "a uploads its edit")
    b.control("resume")
    tree = converge(a, b)
    copies = [p for p in tree if p.startswith("report (conflicted copy from beta ")]
    assert tree["report.txt"][1] == b"a's edit"
    assert len(copies) == 1 and copies[0].endswith(").txt")
    assert tree[copies[0]][1] == b"b's edit"
    assert b.control("conflicts")["paths"] == copies
    st = b.status()  # what the tray shows: "Conflicts (1)", and the recent change
    assert (st["conflict_count"], st["conflicts"], st["conflicts_made"]) == (1, copies, copies)
    recent = [(c["path"], c["direction"], c["action"]) for c in st["recent"]]
    assert ("report.txt", "both", "conflict") in recent


def test_edit_beats_concurrent_delete(pair):
    a, b = pair
    write(a.folder / "keep.txt", "v1")
    converge(a, b)
    a.control("pause")
    b.control("pause")
    write(a.folder / "keep.txt", "v2 edited")
    (b.folder / "keep.txt").unlink()
    b.control("resume")
    wait_for(lambda: b.idle(), "b pushes its delete")
    a.control("resume")
    tree = converge(a, b)
    assert tree["keep.txt"][1] == b"v2 edited"


def test_offline_edits_on_both_sides_reconcile(server, pair):
    a, b = pair
    write(a.folder / "shared.txt", "before")
    converge(a, b)
    server.stop()
    write(a.folder / "from-a.txt", "written while offline on a")
    write(b.folder / "from-b.txt", "written while offline on b")
    (b.folder / "shared.txt").unlink()
    wait_for(lambda: a.status()["state"] == "offline", "a notices the server is gone")
    st = a.status()
    assert st["offline_since"] is not None and st["next_retry"] is not None
    server.start()
    tree = converge(a, b)
    assert tree["from-a.txt"][1] == b"written while offline on a"
    assert tree["from-b.txt"][1] == b"written while offline on b"
    assert "shared.txt" not in tree


def test_ignored_and_unsyncable_paths_are_reported_not_synced(pair):
    a, b = pair
    write(a.folder / ".syncignore", "*.log\nbuild/\n")
    write(a.folder / "app.log", "noise")
    write(a.folder / "build/out.o", "object")
    write(a.folder / ".report.txt.swp", "vim swap")
    write(a.folder / "kept.txt", "kept")
    os.symlink("/etc/passwd", a.folder / "link-out")
    os.mkfifo(a.folder / "pipe")
    wait_for(lambda: set(b.tree()) == {".syncignore", "kept.txt"}, "b gets what is synced")
    wait_for(lambda: a.idle() and b.idle(), "both idle")
    assert set(b.tree()) == {".syncignore", "kept.txt"}
    assert (a.folder / "app.log").exists() and (a.folder / "build/out.o").exists()
    problems = {p["path"] for p in a.status()["problems"]}
    assert {"link-out", "pipe"} <= problems


def test_cli_commands_through_the_control_socket(pair):
    a, b = pair
    write(a.folder / "notes.txt", "v1")
    converge(a, b)
    write(a.folder / "notes.txt", "v2")
    converge(a, b)

    out = syncd("status", home=a.home).stdout
    assert "Up to date" in out or "up to date" in out
    assert '"state": "up to date"' in syncd("status", "--json", home=a.home).stdout
    assert "notes.txt" in syncd("ls", home=a.home).stdout
    hist = syncd("history", "notes.txt", home=a.home).stdout
    assert hist.count("\n") >= 2
    syncd("restore", "notes.txt", home=a.home)
    tree = converge(a, b)
    assert tree["notes.txt"][1] == b"v1"
    assert "alpha" in syncd("devices", home=a.home).stdout

    syncd("pause", home=a.home)
    assert a.status()["state"] == "paused"
    syncd("resume", home=a.home)
    wait_for(lambda: a.status()["state"] != "paused", "resume")


def test_wait_answers_on_a_change_and_the_status_lists_recent_changes(pair):
    a, b = pair
    st = a.status()
    assert st["log"] == str(a.home / "daemon.log")
    assert st["recent"] == [] and st["conflict_count"] == 0
    # nothing changes: the long poll answers at its timeout with the same version
    assert a.control("wait", since=st["version"], seconds=0.2)["version"] == st["version"]
    write(a.folder / "docs/one.txt", "one")  # a change wakes a waiting client at once
    assert a.control("wait", since=st["version"], seconds=25)["version"] != st["version"]
    converge(a, b)
    up = [(c["path"], c["direction"], c["action"]) for c in a.status()["recent"]]
    down = [(c["path"], c["direction"], c["action"]) for c in b.status()["recent"]]
    assert ("docs/one.txt", "up", "uploaded") in up
    assert ("docs/one.txt", "down", "downloaded") in down
    (b.folder / "docs/one.txt").unlink()
    converge(a, b)
    assert tuple(b.status()["recent"][0][k] for k in ("path", "direction", "action")) == (
        "docs/one.txt",
        "up",
        "deleted",
    )
    assert a.status()["recent"][0]["action"] == "deleted"


def test_status_without_daemon_says_so(tmp_path):
    out = syncd("status", home=tmp_path / "nohome", check=False)
    assert out.returncode != 0
    assert "not running" in (out.stderr + out.stdout)


def test_kill9_mid_upload_then_restart_converges(pair):
    a, b = pair
    big = os.urandom(12 * 1024 * 1024)
    write(a.folder / "big.bin", big)
    wait_for(lambda: a.status()["bytes_up"] > 0 or a.status()["state"] == "syncing", "upload")
    a.kill9()
    a.start()
    tree = converge(a, b, timeout=180)
    assert tree["big.bin"][1] == big
    for d in (a, b):
        leftovers = (
            [p for p in os.listdir(d.folder / ".syncd" / "tmp")]
            if (d.folder / ".syncd" / "tmp").exists()
            else []
        )
        assert leftovers == []


def test_kill9_mid_download_then_restart_converges(pair):
    a, b = pair
    big = os.urandom(12 * 1024 * 1024)
    write(a.folder / "big.bin", big)
    wait_for(lambda: b.status()["files_down"] > 0, "b starts downloading", 120)
    b.kill9()
    assert "big.bin" not in b.tree() or b.tree()["big.bin"][1] == big  # never partial
    b.start()
    tree = converge(a, b, timeout=180)
    assert tree["big.bin"][1] == big
    tmp = b.folder / ".syncd" / "tmp"
    assert not tmp.exists() or os.listdir(tmp) == []


def test_server_restart_under_a_syncing_daemon(server, pair):
    a, b = pair
    for i in range(30):
        write(a.folder / f"batch/f{i}.txt", f"content {i}")
    server.restart()
    for i in range(30, 40):
        write(a.folder / f"batch/f{i}.txt", f"content {i}")
    tree = converge(a, b, timeout=120)
    assert sum(1 for p in tree if p.startswith("batch/f")) == 40


def test_a_second_start_says_already_running(pair):
    a, _ = pair
    out = syncd("start", home=a.home, check=False)
    assert "already running" in (out.stdout + out.stderr)
    assert a.status()["state"] in ("up to date", "syncing")


def test_an_unmounted_folder_is_not_taken_for_deleting_everything(pair):
    a, b = pair
    write(a.folder / "precious.txt", "do not delete me")
    write(a.folder / "dir/more.txt", "nor me")
    converge(a, b)
    # the disk goes away: an empty mount point is left where the folder was
    a.folder.rename(a.base / "unmounted")
    a.folder.mkdir()
    wait_for(lambda: a.status()["state"] == "error", "a refuses to sync")
    assert "unmounted" in a.status()["error"]["reason"]
    assert b.tree()["precious.txt"][1] == b"do not delete me"
    assert b.tree()["dir/more.txt"][1] == b"nor me"
    # the disk comes back: syncing resumes with nothing lost
    a.folder.rmdir()
    (a.base / "unmounted").rename(a.folder)
    a.control("resume")
    write(a.folder / "after.txt", "back")
    tree = converge(a, b, timeout=120)
    assert tree["precious.txt"][1] == b"do not delete me" and tree["after.txt"][1] == b"back"


def test_the_daemon_runs_on_the_c_allocator(pair):
    """`start --foreground` re-execs itself once (same pid) with PYTHONMALLOC=malloc, so
    what a big sync frees goes back to the OS (docs/PERFORMANCE.md, scenario 8)."""
    a, _ = pair
    assert a.proc is not None
    environ = Path(f"/proc/{a.proc.pid}/environ").read_bytes().split(b"\0")
    assert b"PYTHONMALLOC=malloc" in environ
    cmdline = Path(f"/proc/{a.proc.pid}/cmdline").read_bytes().split(b"\0")
    assert b"start" in cmdline and b"--foreground" in cmdline
