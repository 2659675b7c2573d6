"""A file a remote delete removes is kept a while in the state folder, so its chunks
still build a file that comes later: a moved folder whose deletions arrive before all of
its new files, a file moved out and back in. Two real loops on one account, driven pass
by pass; the loops' clock is the test's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncd.engine import executor as executor_mod
from syncd.engine import localfs
from syncd.engine.loop import SyncLoop
from syncd.errors import FileError
from syncd.transport.client import ServerClient
from tests.support.loops import TestClock, sync_loop
from tests.support.server import ServerProc


@pytest.fixture
def pair(server: ServerProc, new_user, tmp_path: Path):
    """Loops of devices A and B on one account, with one shared clock."""
    session = new_user("a")
    clients = [ServerClient(server.url, session.token) for _ in range(2)]
    clock = TestClock()
    loops = []
    for name, client in zip("ab", clients, strict=True):
        loop = sync_loop(tmp_path / name / "folder", client, session, device=name)
        loop.clock = loop.executor.clock = clock
        loops.append(loop)
    yield loops[0], loops[1], clock
    for client in clients:
        client.close()


def _sync(a: SyncLoop, b: SyncLoop, changed: set[str]) -> None:
    """A uploads `changed`, then B pulls and applies it."""
    a.post("dirty", changed)
    a.tick()
    b.post("remote")
    b.tick()


def _downloaded(loop: SyncLoop) -> int:
    return loop.status.downloaded_bytes_total


def test_a_file_deleted_then_created_elsewhere_is_built_from_the_kept_copy(pair):
    a, b, _clock = pair
    data = os.urandom(300_000)
    (a.root / "old").mkdir()
    (a.root / "old" / "one.bin").write_bytes(data)
    a.tick()  # first passes: full scans
    b.tick()
    assert (b.root / "old" / "one.bin").read_bytes() == data
    fetched = _downloaded(b)
    (a.root / "old" / "one.bin").unlink()  # the delete syncs before the new file exists
    _sync(a, b, {"old/one.bin"})
    assert not (b.root / "old" / "one.bin").exists()
    assert len(b.fs.kept_files()) == 1  # out of the folder, in the state folder
    (a.root / "new.bin").write_bytes(data)
    _sync(a, b, {"new.bin"})
    assert (b.root / "new.bin").read_bytes() == data
    assert _downloaded(b) == fetched  # every chunk came from the kept copy


def test_kept_files_go_after_their_time_and_a_changed_one_is_not_trusted(pair):
    a, b, clock = pair
    first, second = os.urandom(200_000), os.urandom(200_000)
    (a.root / "f1").write_bytes(first)
    (a.root / "f2").write_bytes(second)
    a.tick()
    b.tick()
    for name in ("f1", "f2"):
        (a.root / name).unlink()
    _sync(a, b, {"f1", "f2"})
    kept = sorted(b.fs.kept_files())
    assert len(kept) == 2
    for name in kept:  # both changed in the state folder since: their bytes are not used
        (b.fs.kept_dir / name).write_bytes(os.urandom(200_000))
    fetched = _downloaded(b)
    (a.root / "again").write_bytes(first)
    _sync(a, b, {"again"})
    assert (b.root / "again").read_bytes() == first  # fetched from the server instead
    assert _downloaded(b) == fetched + len(first)
    clock.t += executor_mod.KEEP_SECONDS + 1
    b.post("remote")
    b.tick()  # any cycle removes what is past its time
    assert b.fs.kept_files() == []
    assert b.index.kept_names() == set()


def test_kept_files_are_capped_oldest_first_and_strays_removed(
    pair, monkeypatch: pytest.MonkeyPatch
):
    a, b, clock = pair
    monkeypatch.setattr(executor_mod, "KEEP_BYTES", 250_000)
    for name in ("f1", "f2"):
        (a.root / name).write_bytes(os.urandom(100_000))
    a.tick()
    b.tick()
    (a.root / "f1").unlink()
    _sync(a, b, {"f1"})
    clock.t += 1
    (a.root / "f2").unlink()
    _sync(a, b, {"f2"})
    assert len(b.fs.kept_files()) == 2  # 200,000 bytes: under the cap
    (a.root / "big").write_bytes(os.urandom(150_000))
    a.post("dirty", {"big"})
    a.tick()
    b.post("remote")
    b.tick()
    clock.t += 1
    (a.root / "big").unlink()
    _sync(a, b, {"big"})
    names = b.index.kept_names()
    assert len(names) == 2 and sorted(b.fs.kept_files()) == sorted(names)  # f1 went
    (b.fs.kept_dir / "stray").write_bytes(b"left by a killed process")
    b.executor.remove_stray_kept()
    assert sorted(b.fs.kept_files()) == sorted(names)


def test_a_full_disk_frees_the_kept_files_first(pair, monkeypatch: pytest.MonkeyPatch):
    a, b, _clock = pair
    (a.root / "old.bin").write_bytes(os.urandom(100_000))
    a.tick()
    b.tick()
    (a.root / "old.bin").unlink()
    _sync(a, b, {"old.bin"})
    assert len(b.fs.kept_files()) == 1
    real_stage = b.fs.stage_file

    def no_room(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise FileError(path, localfs.DISK_FULL)  # what a write that hits ENOSPC raises

    monkeypatch.setattr(b.fs, "stage_file", no_room)
    data = os.urandom(100_000)
    (a.root / "new.bin").write_bytes(data)
    _sync(a, b, {"new.bin"})
    assert not (b.root / "new.bin").exists()
    assert b.fs.kept_files() == [] and b.index.kept_names() == set()  # room made at once
    monkeypatch.setattr(b.fs, "stage_file", real_stage)
    b.post("retry", {"new.bin"})
    b.tick()
    assert (b.root / "new.bin").read_bytes() == data
