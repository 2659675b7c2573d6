"""Hostile things on disk, end to end: each has a defined outcome, and the rest syncs.

The outcomes are listed in docs/RELIABILITY.md, "Hostile input on disk"; each test
here names the one it checks.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.support.devices import DeviceProc, converge, wait_for
from tests.support.server import ServerProc

_users = itertools.count()


def _pair(server: ServerProc, prefix: str) -> tuple[DeviceProc, DeviceProc]:
    user = f"{prefix}{next(_users)}"
    server.adduser(user)
    a, b = DeviceProc("alpha", server), DeviceProc("beta", server)
    for d in (a, b):
        d.link(user)
        d.start()
    return a, b


@pytest.fixture
def pair(server):
    a, b = _pair(server, "hostile")
    yield a, b
    for d in (a, b):
        d.cleanup()


def write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _deep_file(root: Path, levels: int, name_len: int) -> str:
    """A file more than PATH_MAX below `root`, made with directory fds; its relative path."""
    parts = [f"{i:02d}" + "d" * (name_len - 2) for i in range(levels)]
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            os.mkdir(part, dir_fd=fd)
            new = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = new
        leaf = os.open("deep.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(leaf, b"deep")
        os.close(leaf)
    finally:
        os.close(fd)
    return "/".join([*parts, "deep.txt"])


def _problems(dev: DeviceProc) -> dict[str, str]:
    return {p["path"]: p["reason"] for p in dev.status().get("problems", [])}


def test_hostile_names_and_links_get_their_outcome_and_the_rest_syncs(pair):
    a, b = pair
    f = a.folder
    long_name = "n" * 251 + ".txt"  # 255 bytes: the most ext4 allows
    synced = {
        "ok/normal.txt": b"fine",
        long_name: b"long",
        "Readme.md": b"upper",
        "README.md": b"lower",
        "caf\u00e9.txt": b"nfc",
        "CON": b"con",
        "aux.c": b"aux",
        "nul.txt": b"nul",
        "locked.txt": b"secret",
    }
    for rel, data in synced.items():
        write(f / rel, data)
    os.chmod(f / "locked.txt", 0)
    write(f / "new\nline.txt", "x")
    write(f / "tab\there.txt", "x")
    with open(os.fsencode(f) + b"/bad\xffname.txt", "wb") as fh:
        fh.write(b"x")
    write(f / "cafe\u0301.txt", "nfd twin")
    write(f / "solo-e\u0301.txt", "nfd alone")
    os.symlink("loop", f / "loop")
    os.symlink("b-link", f / "a-link")
    os.symlink("a-link", f / "b-link")
    os.symlink("/etc", f / "outside-dir")
    os.symlink("/etc/hostname", f / "outside-file")
    os.symlink("ok", f / "inside-link")
    deep = _deep_file(f, levels=21, name_len=200)

    skipped = {
        "new\nline.txt": "control character",
        "tab\there.txt": "control character",
        "bad\\xffname.txt": "not valid UTF-8",
        "cafe\u0301.txt": "NFC",
        "solo-e\u0301.txt": "NFC",
        "loop": "symbolic link",
        "a-link": "symbolic link",
        "b-link": "symbolic link",
        "outside-dir": "symbolic link",
        "outside-file": "symbolic link",
        "inside-link": "symbolic link",
    }
    if os.geteuid() != 0:  # root reads a mode-000 file: then it syncs like any other
        del synced["locked.txt"]
        skipped["locked.txt"] = "Permission denied"

    def arrived() -> bool:
        return all(
            (b.folder / rel).is_file() and (b.folder / rel).read_bytes() == data
            for rel, data in synced.items()
        )

    wait_for(arrived, "the ordinary and the odd-but-valid files on beta")

    def reported() -> bool:
        problems = _problems(a)
        return all(path in problems for path in skipped) and any(
            deep.startswith(path) for path in problems
        )

    wait_for(reported, f"every skipped path in alpha's status: {_problems(a)}")
    problems = _problems(a)
    for path, why in skipped.items():
        assert why.lower() in problems[path].lower(), (path, problems[path])
    names = set(os.listdir(b.folder))
    for path in skipped:
        assert path not in names
    assert not (b.folder / "bad\udcffname.txt").exists()
    assert not any(n.startswith("cafe\u0301") or n.startswith("solo") for n in names)
    # Links were neither followed nor recreated, and nothing of /etc came across.
    assert not any(os.path.islink(b.folder / n) for n in names)
    assert not (b.folder / "outside-dir").exists()
    # The rest keeps syncing after all that.
    write(f / "ok/after.txt", "still syncing")
    wait_for(lambda: (b.folder / "ok/after.txt").is_file(), "a later file on beta")


def test_a_file_rewritten_while_it_is_read_is_never_committed_half_read(pair):
    a, b = pair
    target = a.folder / "churn.bin"
    stop = threading.Event()
    versions: list[bytes] = []

    def churn() -> None:
        i = 0
        while not stop.is_set():
            data = hashlib.sha256(str(i).encode()).digest() * (2000 + 500 * (i % 7))
            with open(target, "wb") as fh:  # truncate, then write in pieces
                for start in range(0, len(data), 8192):
                    fh.write(data[start : start + 8192])
                    fh.flush()
            versions.append(data)
            i += 1
            time.sleep(0.01)

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        time.sleep(3)
    finally:
        stop.set()
        worker.join()
    tree = converge(a, b)
    assert tree["churn.bin"][1] == versions[-1]
    # Every revision the server holds is what the file held at one moment, never a torn
    # mix of two writes: a whole version, or one caught between its truncation and its
    # last write (a prefix of it, empty included: such a moment really was on disk).
    history = a.control("history", path="churn.bin")["entries"]
    assert history
    for rev in history:
        content = _revision_bytes(a, rev)
        assert len(content) == rev["size"]
        assert any(v.startswith(content) for v in versions), (rev["rev"], rev["size"])


def _revision_bytes(dev: DeviceProc, entry: dict) -> bytes:
    """A revision's content, fetched from the server with the device's own token."""
    from syncd.credentials import load_token
    from syncd.home import ClientHome
    from syncd.transport.client import ServerClient

    home = ClientHome(dev.home)
    cfg = home.load_config()
    client = ServerClient(cfg.server_url, load_token(home, cfg))
    try:
        ids = [b["id"] for b in entry["blocks"]]
        got = dict(
            client.get_chunks(cfg.namespace, ids, {b["id"]: b["size"] for b in entry["blocks"]})
        )
    finally:
        client.close()
    return b"".join(got[i] for i in ids)


def test_a_file_deleted_while_it_is_read_leaves_no_trace_and_no_error(pair):
    a, b = pair
    data = os.urandom(12 << 20)  # long enough to be mid-read when it goes
    for delay in (0.0, 0.05, 0.15, 0.3):
        target = a.folder / "vanishing.bin"
        write(target, data)
        time.sleep(delay)
        target.unlink()
    write(a.folder / "after.txt", "the rest syncs")
    tree = converge(a, b, timeout=120)
    assert "vanishing.bin" not in tree and tree["after.txt"][1] == b"the rest syncs"
    assert not _problems(a) and a.status()["error"] is None
    try:  # a revision that made it to the server is the file (or a prefix caught while
        # it was being written, a real state) or a deletion
        history = a.control("history", path="vanishing.bin")["entries"]
    except Exception:
        history = []
    assert all(rev["deleted"] or rev["size"] <= len(data) for rev in history)


def test_a_folder_replaced_by_a_file_of_the_same_name(pair):
    a, b = pair
    write(a.folder / "thing/inner/one.txt", "1")
    write(a.folder / "thing/two.txt", "2")
    converge(a, b)
    shutil.rmtree(a.folder / "thing")
    write(a.folder / "thing", "now a file")
    tree = converge(a, b)
    assert tree["thing"] == ("file", b"now a file", False)
    assert not any(p.startswith("thing/") for p in tree)


def test_a_file_replaced_by_a_folder_of_the_same_name(pair):
    a, b = pair
    write(a.folder / "item", "a file first")
    converge(a, b)
    (a.folder / "item").unlink()
    write(a.folder / "item/inside.txt", "now a folder")
    tree = converge(a, b)
    assert tree["item"] == ("dir",)
    assert tree["item/inside.txt"] == ("file", b"now a folder", False)


@pytest.fixture(scope="module")
def default_chunking_server(tmp_path_factory):
    srv = ServerProc(tmp_path_factory.mktemp("sparse") / "data", chunking=None)
    yield srv.start()
    srv.stop()


def test_a_sparse_multi_gb_file_costs_only_its_data_and_stays_sparse(default_chunking_server):
    a, b = _pair(default_chunking_server, "sparse")
    try:
        size = 2 * 1024**3 + 12345
        path = a.folder / "disk.img"
        with open(path, "wb") as fh:
            fh.write(b"header")
            fh.seek(1024**3)
            fh.write(b"middle")
            fh.truncate(size)
        got = b.folder / "disk.img"
        wait_for(
            lambda: got.is_file() and got.stat().st_size == size and a.idle() and b.idle(),
            "the sparse file on beta",
            timeout=300,
        )
        with open(got, "rb") as fh:
            assert fh.read(6) == b"header"
            fh.seek(1024**3)
            assert fh.read(6) == b"middle"
            fh.seek(size - 4096)
            assert fh.read() == bytes(4096)
        assert a.status()["uploaded_bytes_total"] < 4 * 1024**2
        assert got.stat().st_blocks * 512 < 64 * 1024**2  # holes stayed holes
    finally:
        a.cleanup()
        b.cleanup()


def _chattr(flag: str, path: Path) -> bool:
    import subprocess

    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


def test_a_folder_that_cannot_be_written_is_reported_retried_calmly_and_caught_up(pair):
    a, b = pair
    write(a.folder / "locked/first.txt", "1")
    converge(a, b)
    if not _chattr("+i", b.folder / "locked"):
        pytest.skip("chattr +i is not available here (needs root on ext4/xfs/btrfs)")
    try:
        write(a.folder / "locked/second.txt", "2")
        write(a.folder / "free.txt", "the rest syncs")
        wait_for(lambda: (b.folder / "free.txt").is_file(), "the rest on beta")
        wait_for(
            lambda: "locked/second.txt" in _problems(b), f"the problem in status: {b.status()}"
        )
        assert "permission denied" in _problems(b)["locked/second.txt"]
        before = b.output().count("skipped locked/second.txt")
        time.sleep(3)
        attempts = b.output().count("skipped locked/second.txt") - before
        assert attempts <= 4, f"{attempts} attempts in 3 s: the daemon is spinning"
    finally:
        _chattr("-i", b.folder / "locked")
    tree = converge(a, b)
    assert tree["locked/second.txt"] == ("file", b"2", False)
