"""LocalFS on real temp folders: atomic, verified writes that never clobber user data."""

from __future__ import annotations

import contextlib
import errno
import os

import blake3
import pytest

from syncd.engine import localfs
from syncd.engine.conflicts import conflict_name
from syncd.engine.localfs import ConflictDetected, LocalFS
from syncd.errors import FileError
from syncd.indexer.state import Block, FileState


@pytest.fixture
def fs(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / ".syncd").mkdir()  # the daemon creates the state dir; LocalFS never does
    fs = LocalFS(root, root / ".syncd")
    fs.cleanup_temp()
    return fs


def remote(path: str, chunks: list[bytes], mode: int = 0o644, mtime_ns: int = 10**18) -> FileState:
    blocks = tuple(Block(blake3.blake3(c).hexdigest(), len(c)) for c in chunks)
    return FileState(path, "file", sum(map(len, chunks)), mode, mtime_ns, blocks, rev=7)


def local_of(fs: LocalFS, path: str) -> FileState:
    st = os.lstat(fs.abspath(path))
    return FileState(path, "file", st.st_size, st.st_mode & 0o777, st.st_mtime_ns, inode=st.st_ino)


def tmp_files(fs: LocalFS) -> list[str]:
    return os.listdir(fs.tmp_dir)


def test_write_creates_parents_applies_mode_and_mtime(fs):
    chunks = [b"hello ", b"world"]
    state = fs.write_file(
        "a/b/c.sh", remote("a/b/c.sh", chunks, 0o755, 1_500_000_000 * 10**9), chunks, None
    )
    path = fs.root / "a/b/c.sh"
    assert path.read_bytes() == b"hello world"
    assert os.stat(path).st_mode & 0o100
    assert os.stat(path).st_mtime_ns == 1_500_000_000 * 10**9
    assert state.inode == os.stat(path).st_ino and state.blocks == remote("x", chunks).blocks
    assert tmp_files(fs) == []


def test_verified_chunks_skip_the_hash_but_not_the_size_check(fs):
    good = remote("f", [b"right"])
    with pytest.raises(FileError, match="does not match"):
        fs.write_file("f", good, [b"longer than that"], None, verified=True)
    assert not (fs.root / "f").exists() and tmp_files(fs) == []
    fs.write_file("f", good, [b"right"], None, verified=True)
    assert (fs.root / "f").read_bytes() == b"right"


@pytest.mark.parametrize("as_views", [False, True], ids=["bytes", "views-into-one-body"])
def test_zero_chunks_become_holes_and_others_data(fs, as_views):
    zero, almost = bytes(1 << 20), bytes((1 << 20) - 1) + b"x"
    chunks = [b"head", zero, almost, b"\0tail", zero]
    state = remote("sparse", chunks)
    written: list = list(chunks)
    if as_views:  # as a batch download hands them over: slices of one response body
        body, at = memoryview(b"".join(chunks)), 0
        written = []
        for c in chunks:
            written.append(body[at : at + len(c)])
            at += len(c)
    fs.write_file("sparse", state, written, None, verified=True)
    path = fs.root / "sparse"
    assert path.read_bytes() == b"".join(chunks)  # ends in a hole: still its full size
    assert os.stat(path).st_mtime_ns == state.mtime_ns
    # the two zero chunks (2 MiB) are holes; `almost` and the small ones are data
    assert os.stat(path).st_blocks * 512 < 1.5 * (1 << 20) + 64 * 1024


def test_gathered_writes_survive_short_writes_holes_and_empty_chunks(fs, monkeypatch):
    """writev(2) may write less than asked (a signal, a nearly full disk): the rest
    is written after it, and no chunk is lost or repeated."""
    real = os.writev
    calls = []

    def short(fd, views):
        calls.append(len(views))
        return real(fd, [bytes(v)[:777] for v in views[:3]])  # at most 777 bytes a call

    monkeypatch.setattr(os, "writev", short)
    chunks = [os.urandom(100 + i % 300) for i in range(1500)]  # more than WRITE_IOVECS
    chunks[10:10] = [b"", bytes(5000), b""]
    fs.write_file("f", remote("f", chunks), chunks, None)
    assert (fs.root / "f").read_bytes() == b"".join(chunks)
    assert max(calls) <= localfs.WRITE_IOVECS


def test_a_full_disk_during_a_download_leaves_no_trace(fs, monkeypatch):
    def full(fd, views):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "writev", full)
    chunks = [os.urandom(1000)]
    with pytest.raises(FileError, match="disk full"):
        fs.write_file("f", remote("f", chunks), chunks, None)
    assert not (fs.root / "f").exists() and tmp_files(fs) == []


def test_corrupt_chunk_leaves_no_trace(fs):
    good = remote("f", [b"right"])
    with pytest.raises(FileError, match="verification"):
        fs.write_file("f", good, [b"wrong"], None)
    assert not (fs.root / "f").exists() and tmp_files(fs) == []
    with pytest.raises(FileError, match="ended early"):
        fs.write_file("f", remote("f", [b"a", b"b"]), [b"a"], None)
    assert tmp_files(fs) == []


def test_a_changed_target_is_never_overwritten(fs):
    (fs.root / "doc.txt").write_bytes(b"original")
    seen = local_of(fs, "doc.txt")
    (fs.root / "doc.txt").write_bytes(b"user edited this meanwhile!")
    with pytest.raises(ConflictDetected):
        fs.write_file("doc.txt", remote("doc.txt", [b"server"]), [b"server"], seen)
    assert (fs.root / "doc.txt").read_bytes() == b"user edited this meanwhile!"
    # a file that appeared where none was expected is kept too
    (fs.root / "new.txt").write_bytes(b"surprise")
    with pytest.raises(ConflictDetected):
        fs.write_file("new.txt", remote("new.txt", [b"s"]), [b"s"], None)
    assert (fs.root / "new.txt").read_bytes() == b"surprise"
    assert tmp_files(fs) == []


def test_matching_target_is_replaced_atomically(fs):
    (fs.root / "doc.txt").write_bytes(b"v1")
    seen = local_of(fs, "doc.txt")
    fs.write_file("doc.txt", remote("doc.txt", [b"v2"]), [b"v2"], seen)
    assert (fs.root / "doc.txt").read_bytes() == b"v2"


def test_symlinked_parent_is_refused(fs, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, fs.root / "link")
    with pytest.raises(FileError, match="symlink"):
        fs.write_file("link/evil.txt", remote("link/evil.txt", [b"x"]), [b"x"], None)
    assert list(outside.iterdir()) == []
    assert fs.read_chunk("link/evil.txt", 0, 1, blake3.blake3(b"x").hexdigest()) is None


def test_disk_full_leaves_target_untouched(fs):
    (fs.root / "keep.txt").write_bytes(b"precious")
    seen = local_of(fs, "keep.txt")

    def chunks():
        yield b"part"
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(FileError, match="disk full"):
        fs.write_file("keep.txt", remote("keep.txt", [b"part", b"more"]), chunks(), seen)
    assert (fs.root / "keep.txt").read_bytes() == b"precious"
    assert tmp_files(fs) == []


def test_delete_only_what_matches_and_only_empty_folders(fs):
    (fs.root / "f").write_bytes(b"x")
    seen = local_of(fs, "f")
    (fs.root / "f").write_bytes(b"changed!")
    assert fs.delete("f", seen) is False and (fs.root / "f").exists()
    assert fs.delete("f", local_of(fs, "f")) is True and not (fs.root / "f").exists()
    (fs.root / "d").mkdir()
    (fs.root / "d/child").write_bytes(b"c")
    folder = FileState("d", "dir")
    assert fs.delete("d", folder) is False and (fs.root / "d/child").exists()
    (fs.root / "d/child").unlink()
    assert fs.delete("d", folder) is True
    assert fs.delete("gone", folder) is True


def test_a_kept_delete_moves_the_file_into_the_state_folder(fs):
    (fs.root / "f").write_bytes(b"content")
    seen = local_of(fs, "f")
    (fs.root / "f").write_bytes(b"changed content")
    assert fs.delete("f", seen, keep_as="k1") is False  # changed: neither kept nor gone
    assert fs.kept_files() == [] and (fs.root / "f").exists()
    assert fs.delete("f", local_of(fs, "f"), keep_as="k1") is True
    assert not (fs.root / "f").exists() and fs.kept_files() == ["k1"]
    assert (fs.kept_dir / "k1").read_bytes() == b"changed content"
    data = b"changed content"[8:]
    assert fs.read_chunk(fs.kept_path("k1"), 8, 7, blake3.blake3(data).hexdigest()) == data
    fs.remove_kept(["k1", "never-there"])
    assert fs.kept_files() == []


def test_move_aside_and_conflict_names(fs):
    (fs.root / "r.txt").write_bytes(b"mine")
    from datetime import date

    name = conflict_name("r.txt", "laptop", date(2026, 11, 25), fs.exists)
    assert name == "r (conflicted copy from laptop 2026-11-25).txt"
    fs.move_aside("r.txt", name)
    assert (fs.root / name).read_bytes() == b"mine"
    (fs.root / "r.txt").write_bytes(b"again")
    second = conflict_name("r.txt", "laptop", date(2026, 11, 25), fs.exists)
    assert second == "r (conflicted copy from laptop 2026-11-25 2).txt"
    with pytest.raises(FileError):
        fs.move_aside("r.txt", name)


def test_read_chunk_verifies_and_cleanup_removes_stale_temp(fs):
    (fs.root / "f").write_bytes(b"0123456789")
    assert fs.read_chunk("f", 2, 3, blake3.blake3(b"234").hexdigest()) == b"234"
    assert fs.read_chunk("f", 2, 3, blake3.blake3(b"xyz").hexdigest()) is None
    (fs.tmp_dir / "dl-stale").write_bytes(b"left by a killed process")
    fs.cleanup_temp()
    assert tmp_files(fs) == []


def test_a_vanished_state_dir_is_not_recreated(fs):
    """An unmounted folder must not get a fresh state dir that hides its absence."""
    fs.tmp_dir.rmdir()
    fs.state_dir.rmdir()
    with pytest.raises(FileError):
        fs.write_file("f", remote("f", [b"x"]), [b"x"], None)
    assert not fs.state_dir.exists() and not (fs.root / "f").exists()


def test_staged_files_are_placed_only_over_the_expected_target(tmp_path):
    """A batch: stage (no fsync), flush once, then place each; a target that changed
    meanwhile stays untouched and its staged copy is removed."""

    root = tmp_path / "root"
    (root / ".syncd").mkdir(parents=True)
    fs = LocalFS(root, root / ".syncd")
    data = b"fresh content"
    state = FileState("a.txt", "file", len(data), 0o644, 1_000_000_000,
                      (Block(blake3.blake3(data).hexdigest(), len(data)),))  # fmt: skip
    staged = [fs.stage_file(p, state, [data], durable=False) for p in ("a.txt", "b.txt")]
    fs.sync_staged(staged)
    placed = fs.place_file("a.txt", state, staged[0], None)
    assert (root / "a.txt").read_bytes() == data and placed.size == len(data)
    (root / "b.txt").write_bytes(b"the user's own file")  # appeared after the plan
    try:
        fs.place_file("b.txt", state, staged[1], None)
        raise AssertionError("placed over a file it did not expect")
    except ConflictDetected:
        pass
    assert (root / "b.txt").read_bytes() == b"the user's own file"
    assert os.listdir(root / ".syncd" / "tmp") == []


def test_a_big_file_replaced_is_freed_in_the_background_and_no_fd_is_kept(fs):
    def fds() -> list[str]:
        links = []
        for n in os.listdir("/proc/self/fd"):
            with contextlib.suppress(FileNotFoundError):  # the listing's own fd
                links.append(os.readlink(f"/proc/self/fd/{n}"))
        return links

    old = [os.urandom(1 << 20) for _ in range(localfs.HOLD_REPLACED >> 20)]
    fs.write_file("big", remote("big", old), old, None)
    before = len(fds())
    new = [*old[:-1], os.urandom(1 << 20)]
    state = fs.write_file("big", remote("big", new), new, local_of(fs, "big"))
    assert (fs.root / "big").read_bytes() == b"".join(new)
    assert state.inode == os.stat(fs.root / "big").st_ino
    localfs._RELEASER.submit(lambda: None).result(10)  # the release queue has run
    assert len(fds()) == before
    assert not [link for link in fds() if link.startswith(str(fs.root))]
