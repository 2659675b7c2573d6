"""The scanner on real temp folders, with a counting stand-in for the chunker."""

from __future__ import annotations

import os
import pickle
import shutil
import socket
import stat
import tempfile
import unicodedata
from pathlib import Path

import blake3
import pytest

from syncd.errors import FatalError, FileError
from syncd.indexer import scanner as scanner_module
from syncd.indexer.db import Index
from syncd.indexer.ignore import Ignore
from syncd.indexer.scanner import CHANGING, NFC_TWIN, NOT_NFC, SYMLINK, UNDECODABLE, scan
from syncd.indexer.state import FileState
from tests.indexer.conftest import PAST_NS, CountingChunker, is_privileged, write

PARAMS = object()  # the stand-in chunker ignores parameters


def run(root: Path, chunker: CountingChunker, snapshot=None, only=None, ignore=None):
    return scan(
        root, dict(snapshot or {}), ignore or Ignore.from_root(root), PARAMS, chunker, only=only
    )


def apply(snapshot: dict[str, FileState], result) -> dict[str, FileState]:
    new = dict(snapshot)
    new.update(result.changed)
    for path in result.removed:
        del new[path]
    return new


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    write(root / "a.txt", "alpha")
    write(root / "docs/big.bin", os.urandom(10_000))
    write(root / "docs/sub/deep.md", "# deep")
    (root / "empty").mkdir()
    return root


# -- states ------------------------------------------------------------------------------


def test_first_scan_finds_files_and_folders(tree: Path, chunker: CountingChunker):
    result = run(tree, chunker)
    assert set(result.changed) == {
        "a.txt",
        "docs",
        "docs/big.bin",
        "docs/sub",
        "docs/sub/deep.md",
        "empty",
    }
    assert result.removed == set()
    assert result.problems == {}
    big = result.changed["docs/big.bin"]
    data = (tree / "docs/big.bin").read_bytes()
    assert big.kind == "file"
    assert big.size == 10_000
    assert big.mtime_ns == PAST_NS
    assert big.inode == (tree / "docs/big.bin").stat().st_ino
    assert big.mode == (tree / "docs/big.bin").stat().st_mode & 0o777
    assert [b.size for b in big.blocks] == [4096, 4096, 1808]
    assert big.blocks[0].id == blake3.blake3(data[:4096]).hexdigest()
    assert result.changed["empty"].kind == "dir"
    assert result.changed["empty"].blocks == ()
    assert "" not in result.changed
    assert sorted(chunker.names()) == ["a.txt", "big.bin", "deep.md"]


def test_empty_file_has_no_blocks(tmp_path: Path, chunker: CountingChunker):
    write(tmp_path / "zero", b"")
    result = run(tmp_path, chunker)
    assert result.changed["zero"].size == 0
    assert result.changed["zero"].blocks == ()


def test_unchanged_files_are_not_read_again(tree: Path, chunker: CountingChunker):
    snapshot = apply({}, run(tree, chunker))
    chunker.calls.clear()
    result = run(tree, chunker, snapshot)
    assert (result.changed, result.removed, result.problems) == ({}, set(), {})
    assert chunker.calls == []


def test_only_a_changed_file_is_rechunked(tree: Path, chunker: CountingChunker):
    snapshot = apply({}, run(tree, chunker))
    chunker.calls.clear()
    write(tree / "a.txt", "alpha, longer now")
    result = run(tree, chunker, snapshot)
    assert chunker.names() == ["a.txt"]
    assert set(result.changed) == {"a.txt"}
    assert result.changed["a.txt"].size == len("alpha, longer now")


def test_mtime_change_alone_rechunks(tree: Path, chunker: CountingChunker):
    snapshot = apply({}, run(tree, chunker))
    chunker.calls.clear()
    os.utime(tree / "a.txt", ns=(PAST_NS + 5, PAST_NS + 5))
    result = run(tree, chunker, snapshot)
    assert chunker.names() == ["a.txt"]
    assert result.changed["a.txt"].blocks == snapshot["a.txt"].blocks
    assert result.changed["a.txt"].mtime_ns == PAST_NS + 5


def test_chmod_keeps_blocks_without_reading(tree: Path, chunker: CountingChunker):
    snapshot = apply({}, run(tree, chunker))
    chunker.calls.clear()
    os.chmod(tree / "a.txt", 0o755)
    result = run(tree, chunker, snapshot)
    assert chunker.calls == []
    assert result.changed["a.txt"].mode == 0o755
    assert result.changed["a.txt"].executable
    assert result.changed["a.txt"].blocks == snapshot["a.txt"].blocks


def test_deletions(tree: Path, chunker: CountingChunker):
    snapshot = apply({}, run(tree, chunker))
    (tree / "a.txt").unlink()
    (tree / "docs/sub/deep.md").unlink()
    (tree / "docs/sub").rmdir()
    (tree / "empty").rmdir()
    result = run(tree, chunker, snapshot)
    assert result.removed == {"a.txt", "docs/sub", "docs/sub/deep.md", "empty"}
    assert result.changed == {}


def test_rename_reuses_blocks_without_reading(tree: Path, chunker: CountingChunker):
    snapshot = apply({}, run(tree, chunker))
    chunker.calls.clear()
    os.rename(tree / "docs/big.bin", tree / "moved.bin")
    os.rename(tree / "docs/sub", tree / "renamed")
    result = run(tree, chunker, snapshot)
    assert chunker.calls == []
    assert result.changed["moved.bin"].blocks == snapshot["docs/big.bin"].blocks
    assert result.changed["renamed/deep.md"].blocks == snapshot["docs/sub/deep.md"].blocks
    assert result.removed == {"docs/big.bin", "docs/sub", "docs/sub/deep.md"}


def test_hard_link_reuses_blocks(tree: Path, chunker: CountingChunker):
    snapshot = apply({}, run(tree, chunker))
    chunker.calls.clear()
    os.link(tree / "docs/big.bin", tree / "link.bin")
    result = run(tree, chunker, snapshot)
    assert chunker.calls == []
    assert result.changed["link.bin"].blocks == snapshot["docs/big.bin"].blocks


def test_a_copy_is_read(tree: Path, chunker: CountingChunker):
    snapshot = apply({}, run(tree, chunker))
    chunker.calls.clear()
    write(tree / "copy.txt", "alpha")  # same size and mtime, another inode
    result = run(tree, chunker, snapshot)
    assert chunker.names() == ["copy.txt"]
    assert result.changed["copy.txt"].blocks == snapshot["a.txt"].blocks


def test_file_replaced_by_folder_and_back(tree: Path, chunker: CountingChunker):
    snapshot = apply({}, run(tree, chunker))
    (tree / "a.txt").unlink()
    write(tree / "a.txt/inner", "x")
    result = run(tree, chunker, snapshot)
    assert result.changed["a.txt"].kind == "dir"
    assert "a.txt/inner" in result.changed
    assert result.removed == set()


# -- files that change while read --------------------------------------------------------


class GrowingChunker(CountingChunker):
    """Appends to the file while 'reading' it, the first `times` times."""

    def __init__(self, times: int = 1) -> None:
        super().__init__()
        self.times = times

    def __call__(self, path: Path, params: object):
        refs = super().__call__(path, params)
        if self.times > 0:
            self.times -= 1
            with open(path, "ab") as fh:
                fh.write(b" and more")
        return refs


def test_file_growing_during_the_scan_is_left_for_later(tmp_path: Path):
    write(tmp_path / "log.txt", "first line")
    chunker = GrowingChunker()
    result = run(tmp_path, chunker)
    assert "log.txt" not in result.changed
    assert result.problems == {"log.txt": CHANGING}
    assert result.retry == {"log.txt"}
    again = run(tmp_path, chunker)
    assert again.changed["log.txt"].size == len("first line and more")
    assert again.problems == {}


def test_a_changing_file_keeps_its_old_state(tmp_path: Path):
    write(tmp_path / "log.txt", "v1")
    snapshot = apply({}, run(tmp_path, CountingChunker()))
    write(tmp_path / "log.txt", "version 2", mtime_ns=PAST_NS + 1)
    result = run(tmp_path, GrowingChunker(), snapshot)
    assert "log.txt" not in result.changed
    assert "log.txt" not in result.removed


def test_file_vanishing_while_read_is_simply_gone(tmp_path: Path):
    write(tmp_path / "tmp.txt", "x")
    snapshot = apply({}, run(tmp_path, CountingChunker()))
    write(tmp_path / "tmp.txt", "xy")

    def vanishing(path: Path, params: object):
        path.unlink()
        raise FileError(str(path), "No such file or directory")

    result = scan(tmp_path, snapshot, Ignore(), PARAMS, vanishing)
    assert result.removed == {"tmp.txt"}
    assert result.problems == {}


def test_chunker_reporting_short_content_is_changing(tmp_path: Path):
    write(tmp_path / "f", "0123456789")

    def short(path: Path, params: object):
        return []  # claims the file is empty

    result = scan(tmp_path, {}, Ignore(), PARAMS, short)
    assert result.problems == {"f": CHANGING}


# -- unreadable things -------------------------------------------------------------------


def test_unreadable_file_is_a_problem_and_keeps_its_state(tmp_path: Path):
    write(tmp_path / "secret", "s")
    snapshot = apply({}, run(tmp_path, CountingChunker()))
    write(tmp_path / "secret", "changed", mtime_ns=PAST_NS + 1)

    def denied(path: Path, params: object):
        raise FileError(str(path), "Permission denied")

    result = scan(tmp_path, snapshot, Ignore(), PARAMS, denied)
    assert result.problems == {"secret": "Permission denied"}
    assert result.changed == {}
    assert result.removed == set()


@pytest.mark.skipif(is_privileged(), reason="running as root: chmod 000 does not stop reads")
def test_chmod_000_file_is_unreadable(tmp_path: Path, chunker: CountingChunker):
    write(tmp_path / "secret", "s")
    os.chmod(tmp_path / "secret", 0)
    try:
        result = run(tmp_path, chunker)
    finally:
        os.chmod(tmp_path / "secret", 0o600)
    assert "secret" in result.problems
    assert "secret" not in result.changed


@pytest.mark.skipif(is_privileged(), reason="running as root: chmod 000 does not stop listing")
def test_chmod_000_folder_is_unlistable(tmp_path: Path, chunker: CountingChunker):
    write(tmp_path / "locked/inside.txt", "x")
    snapshot = apply({}, run(tmp_path, chunker))
    os.chmod(tmp_path / "locked", 0)
    try:
        result = run(tmp_path, chunker, snapshot)
    finally:
        os.chmod(tmp_path / "locked", 0o755)
    assert result.problems["locked"].startswith("cannot list folder")
    assert "locked/inside.txt" not in result.removed


def _scan_as_nobody(root: Path, snapshot: dict[str, FileState]):
    """Run a scan in a forked child that dropped root's privileges (uid/gid 65534)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            os.close(read_end)
            os.setgid(65534)
            os.setuid(65534)
            result = scan(root, snapshot, Ignore(), PARAMS, CountingChunker())
            payload = pickle.dumps((result.changed, result.removed, result.problems))
            with os.fdopen(write_end, "wb") as out:
                out.write(payload)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as inp:
        payload = inp.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return pickle.loads(payload)


@pytest.mark.skipif(not is_privileged(), reason="the chmod 000 tests above cover non-root runs")
def test_unreadable_for_an_unprivileged_user():
    base = Path(tempfile.mkdtemp(prefix="syncd-nobody-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        write(base / "open.txt", "o")
        write(base / "secret.txt", "s")
        write(base / "locked/inside.txt", "i")
        os.chmod(base / "open.txt", 0o644)
        snapshot = apply({}, run(base, CountingChunker()))
        os.chmod(base / "secret.txt", 0)
        write(base / "secret.txt", "changed", mtime_ns=PAST_NS + 1)
        os.chmod(base / "locked", 0o700)  # root's, so nobody cannot list it
        changed, removed, problems = _scan_as_nobody(base, snapshot)
    finally:
        shutil.rmtree(base)
    assert problems == {
        "secret.txt": "Permission denied",
        "locked": "cannot list folder: Permission denied",
    }
    assert removed == set()
    assert "secret.txt" not in changed


def test_unlistable_folder_keeps_everything_below_it(
    tmp_path: Path, chunker: CountingChunker, monkeypatch: pytest.MonkeyPatch
):
    # As root no permission bit stops listing, so the refusal is injected where the
    # scanner opens folders (test_unreadable_for_an_unprivileged_user does it for real).
    write(tmp_path / "locked/inside.txt", "x")
    write(tmp_path / "locked/sub/deeper.txt", "y")
    write(tmp_path / "open.txt", "z")
    snapshot = apply({}, run(tmp_path, chunker))
    (tmp_path / "open.txt").unlink()
    real_open, real_scandir = os.open, os.scandir
    locked = str(tmp_path / "locked")

    def guarded_open(path, *args, **kwargs):
        if path == locked:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    def guarded_scandir(path="."):
        if path == locked:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(scanner_module.os, "open", guarded_open)
    monkeypatch.setattr(scanner_module.os, "scandir", guarded_scandir)
    result = run(tmp_path, chunker, snapshot)
    assert result.problems == {"locked": "cannot list folder: Permission denied"}
    assert result.removed == {"open.txt"}  # but nothing below "locked"


def test_missing_or_unlistable_root_is_fatal(tmp_path: Path, chunker: CountingChunker):
    with pytest.raises(FatalError):
        run(tmp_path / "missing", chunker)
    write(tmp_path / "file", "x")
    with pytest.raises(FatalError):
        scan(tmp_path / "file", {}, Ignore(), PARAMS, chunker)


# -- things that are never synced --------------------------------------------------------


def test_symlinks_are_never_followed(tmp_path: Path, chunker: CountingChunker):
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    write(outside / "private.txt", "do not upload")
    write(root / "real.txt", "r")
    os.symlink(outside, root / "to_outside")
    os.symlink(outside / "private.txt", root / "file_outside")
    os.symlink("real.txt", root / "to_inside")
    os.symlink("nowhere", root / "dangling")
    result = run(root, chunker)
    assert set(result.changed) == {"real.txt"}
    assert result.problems == {
        "to_outside": SYMLINK,
        "file_outside": SYMLINK,
        "to_inside": SYMLINK,
        "dangling": SYMLINK,
    }
    assert [p.name for p in chunker.calls] == ["real.txt"]


def test_folder_swapped_for_a_symlink_is_never_listed_through(tmp_path: Path):
    write(tmp_path / "outside/secret.txt", "s")
    folder = tmp_path / "root/sub"
    folder.mkdir(parents=True)
    st = os.lstat(folder)
    ident = (st.st_dev, st.st_ino)
    assert scanner_module._list_dir(str(folder), ident) == []
    folder.rmdir()
    os.symlink(tmp_path / "outside", folder)
    with pytest.raises(scanner_module._Replaced):
        scanner_module._list_dir(str(folder), ident)
    with pytest.raises(scanner_module._Replaced):
        scanner_module._lstat_in(str(folder), ident, "secret.txt")


def test_file_reached_through_a_swapped_folder_is_not_taken(tmp_path: Path):
    root = tmp_path / "root"
    write(root / "a.txt", "a")
    write(root / "sub/f.txt", "inside")
    write(tmp_path / "outside/f.txt", "OUTSIDE")

    class Swapper(CountingChunker):
        def __call__(self, path: Path, params: object):
            refs = super().__call__(path, params)
            if len(self.calls) == 1:  # swap "sub" for a symlink while the scan runs
                os.rename(root / "sub", tmp_path / "old-sub")
                os.symlink(tmp_path / "outside", root / "sub")
            return refs

    result = scan(root, {}, Ignore(), PARAMS, Swapper())
    assert "sub/f.txt" not in result.changed
    assert result.problems["sub/f.txt"] == CHANGING
    assert result.retry == {"sub/f.txt"}


def test_file_replaced_by_symlink_is_removed(tmp_path: Path, chunker: CountingChunker):
    write(tmp_path / "f.txt", "x")
    snapshot = apply({}, run(tmp_path, chunker))
    (tmp_path / "f.txt").unlink()
    os.symlink("/etc/hostname", tmp_path / "f.txt")
    result = run(tmp_path, chunker, snapshot)
    assert result.removed == {"f.txt"}
    assert result.problems == {"f.txt": SYMLINK}


def test_fifo_and_socket_are_problems(tmp_path: Path, chunker: CountingChunker):
    os.mkfifo(tmp_path / "pipe")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(tmp_path / "sock"))
        result = run(tmp_path, chunker)
    finally:
        sock.close()
    assert result.problems == {"pipe": "named pipe (FIFO)", "sock": "socket"}
    assert result.changed == {}
    assert chunker.calls == []


def test_undecodable_names(tmp_path: Path, chunker: CountingChunker):
    root = os.fsencode(tmp_path)
    with open(root + b"/bad\xff.txt", "wb") as fh:
        fh.write(b"x")
    os.mkdir(root + b"/dir\xfe")
    with open(root + b"/dir\xfe/inner.txt", "wb") as fh:
        fh.write(b"y")
    write(tmp_path / "good.txt", "g")
    result = run(tmp_path, chunker)
    assert set(result.changed) == {"good.txt"}
    assert result.problems == {"bad\\xff.txt": UNDECODABLE, "dir\\xfe": UNDECODABLE}
    for key in result.problems:
        key.encode("utf-8")  # problem keys are always printable text


def test_names_that_are_not_valid_sync_paths(tmp_path: Path, chunker: CountingChunker):
    write(tmp_path / "line\nbreak", "x")
    write(tmp_path / "back\\slash", "x")
    result = run(tmp_path, chunker)
    assert result.changed == {}
    assert "U+000A" in result.problems["line\nbreak"]
    assert "U+005C" in result.problems["back\\slash"]


def test_nfd_name_on_a_byte_exact_filesystem(tmp_path: Path, chunker: CountingChunker):
    nfd = unicodedata.normalize("NFD", "café.txt")
    write(tmp_path / nfd, "x")
    result = run(tmp_path, chunker)
    assert result.changed == {}
    assert result.problems == {nfd: NOT_NFC}


def test_nfd_name_next_to_its_nfc_twin(tmp_path: Path, chunker: CountingChunker):
    nfc = "café.txt"
    nfd = unicodedata.normalize("NFD", nfc)
    write(tmp_path / nfc, "composed")
    write(tmp_path / nfd, "decomposed")
    result = run(tmp_path, chunker)
    assert set(result.changed) == {nfc}
    assert result.problems == {nfd: NFC_TWIN}


def test_nfd_name_on_a_normalization_insensitive_filesystem(
    tmp_path: Path, chunker: CountingChunker, monkeypatch: pytest.MonkeyPatch
):
    # Simulate APFS: looking up the NFC name finds the entry stored under its NFD name.
    nfc = "café.txt"
    nfd = unicodedata.normalize("NFD", nfc)
    write(tmp_path / "dossier" / nfd, "x")
    real_lstat = os.lstat

    def lstat(path, *args, **kwargs):
        text = os.fspath(path)
        if text.endswith(nfc):
            text = text[: -len(nfc)] + nfd
        return real_lstat(text, *args, **kwargs)

    monkeypatch.setattr(scanner_module.os, "lstat", lstat)
    result = run(tmp_path, chunker)
    assert result.problems == {}
    assert result.changed[f"dossier/{nfc}"].size == 1
    assert chunker.calls == [tmp_path / "dossier" / nfd]  # read under its real name


def test_ignored_paths_are_neither_states_nor_problems(tmp_path: Path, chunker: CountingChunker):
    write(tmp_path / ".syncignore", "build/\n*.log\n")
    write(tmp_path / "keep.txt", "k")
    write(tmp_path / "run.log", "l")
    write(tmp_path / ".report.txt.swp", "swap")
    write(tmp_path / ".syncd/tmp/partial", "download in progress")
    write(tmp_path / "build/out.o", "o")
    os.symlink("/etc", tmp_path / "build/link")  # below an ignored folder: not even a problem
    os.mkfifo(tmp_path / "pipe.log")
    result = run(tmp_path, chunker)
    assert set(result.changed) == {".syncignore", "keep.txt"}
    assert result.problems == {}


def test_newly_ignored_paths_leave_the_tree(tmp_path: Path, chunker: CountingChunker):
    write(tmp_path / "run.log", "l")
    snapshot = apply({}, run(tmp_path, chunker))
    write(tmp_path / ".syncignore", "*.log\n")
    result = run(tmp_path, chunker, snapshot, only={".syncignore"})  # a full scan
    assert result.removed == {"run.log"}
    assert set(result.changed) == {".syncignore"}


# -- rescanning only some paths ----------------------------------------------------------


def test_only_rescans_the_given_paths(tree: Path, chunker: CountingChunker):
    snapshot = apply({}, run(tree, chunker))
    chunker.calls.clear()
    write(tree / "a.txt", "changed a", mtime_ns=PAST_NS + 1)
    write(tree / "docs/sub/deep.md", "changed deep", mtime_ns=PAST_NS + 1)
    result = run(tree, chunker, snapshot, only={"a.txt"})
    assert chunker.names() == ["a.txt"]
    assert set(result.changed) == {"a.txt"}


def test_only_a_folder_rescans_its_subtree(tree: Path, chunker: CountingChunker):
    snapshot = apply({}, run(tree, chunker))
    chunker.calls.clear()
    (tree / "docs/sub/deep.md").unlink()
    write(tree / "docs/new.txt", "n")
    write(tree / "a.txt", "outside the scope", mtime_ns=PAST_NS + 1)
    result = run(tree, chunker, snapshot, only={"docs", "docs/sub"})
    assert set(result.changed) == {"docs/new.txt"}
    assert result.removed == {"docs/sub/deep.md"}
    assert chunker.names() == ["new.txt"]


def test_only_a_deleted_folder_removes_its_subtree(tree: Path, chunker: CountingChunker):
    snapshot = apply({}, run(tree, chunker))
    for p in ("docs/sub/deep.md", "docs/big.bin"):
        (tree / p).unlink()
    (tree / "docs/sub").rmdir()
    (tree / "docs").rmdir()
    result = run(tree, chunker, snapshot, only={"docs"})
    assert result.removed == {"docs", "docs/big.bin", "docs/sub", "docs/sub/deep.md"}


def test_only_a_new_file_brings_its_new_folders(tree: Path, chunker: CountingChunker):
    snapshot = apply({}, run(tree, chunker))
    write(tree / "n1/n2/file.txt", "f")
    result = run(tree, chunker, snapshot, only={"n1/n2/file.txt"})
    assert set(result.changed) == {"n1", "n1/n2", "n1/n2/file.txt"}
    assert result.changed["n1"].kind == "dir"


def test_only_a_renamed_file_reuses_blocks(tree: Path, chunker: CountingChunker):
    snapshot = apply({}, run(tree, chunker))
    chunker.calls.clear()
    os.rename(tree / "docs/big.bin", tree / "big.bin")
    result = run(tree, chunker, snapshot, only={"docs/big.bin", "big.bin"})
    assert chunker.calls == []
    assert result.removed == {"docs/big.bin"}
    assert result.changed["big.bin"].blocks == snapshot["docs/big.bin"].blocks


def test_only_never_goes_through_a_symlinked_folder(tmp_path: Path, chunker: CountingChunker):
    root = tmp_path / "root"
    write(tmp_path / "outside/secret.txt", "s")
    root.mkdir()
    os.symlink(tmp_path / "outside", root / "link")
    result = run(root, chunker, only={"link/secret.txt", "../outside/secret.txt"})
    assert result.changed == {}
    assert result.problems == {"link": SYMLINK}
    assert chunker.calls == []


def test_only_a_folder_that_became_a_file(tree: Path, chunker: CountingChunker):
    snapshot = apply({}, run(tree, chunker))
    (tree / "docs/sub/deep.md").unlink()
    (tree / "docs/sub").rmdir()
    write(tree / "docs/sub", "now a file")
    result = run(tree, chunker, snapshot, only={"docs/sub/deep.md"})
    assert result.removed == {"docs/sub/deep.md"}
    assert result.changed["docs/sub"].kind == "file"


def test_only_an_ignored_path_is_not_a_state(tree: Path, chunker: CountingChunker):
    snapshot = apply({}, run(tree, chunker))
    write(tree / ".a.txt.swp", "swap")
    result = run(tree, chunker, snapshot, only={".a.txt.swp", ".syncd/tmp/x"})
    assert (result.changed, result.removed, result.problems) == ({}, set(), {})


# -- the real chunker, once it exists ----------------------------------------------------


def test_with_the_real_chunker(tmp_path: Path):
    from syncd.chunker import DEFAULT_PARAMS

    data = os.urandom(300_000)
    write(tmp_path / "data.bin", data)
    result = scan(tmp_path, {}, Ignore(), DEFAULT_PARAMS)
    state = result.changed["data.bin"]
    assert sum(b.size for b in state.blocks) == len(data)
    first = state.blocks[0]
    assert first.id == blake3.blake3(data[: first.size]).hexdigest()


def test_mode_bits_only(tmp_path: Path, chunker: CountingChunker):
    write(tmp_path / "tool.sh", "#!/bin/sh\n")
    os.chmod(tmp_path / "tool.sh", 0o4755)  # setuid is not a permission bit we keep
    result = run(tmp_path, chunker)
    assert result.changed["tool.sh"].mode == 0o755
    assert stat.S_IMODE(os.lstat(tmp_path / "tool.sh").st_mode) == 0o4755


def test_unreadable_syncignore_is_reported(tmp_path: Path, chunker: CountingChunker):
    (tmp_path / ".syncignore").mkdir()
    result = run(tmp_path, chunker)
    assert result.problems[".syncignore"].startswith("cannot read .syncignore")


def test_scan_results_into_a_real_index(tree: Path, chunker: CountingChunker):
    with Index.open(tree.parent / "index.db") as index:
        first = run(tree, chunker, index.all("local"))
        with index.transaction():
            index.put_many("local", first.changed.values())
            index.delete_many("local", first.removed)
            index.put_many("base", [s.with_rev(1) for s in first.changed.values()])
        os.rename(tree / "docs/big.bin", tree / "big.bin")
        second = run(tree, chunker, index.all("local"), only={"docs/big.bin", "big.bin"})
        with index.transaction():
            index.put_many("local", second.changed.values())
            index.delete_many("local", second.removed)
        assert set(index.all("local")) == set(first.changed) - {"docs/big.bin"} | {"big.bin"}
        moved = index.get("local", "big.bin")
        assert moved is not None
        assert index.find_block(moved.blocks[0].id) is None  # big.bin has no base yet
        assert index.find_local_by_inode(moved.inode or 0) == moved


def test_partial_scans_read_the_index_row_by_row_alike(tree: Path, chunker: CountingChunker):
    """A partial rescan over `Index.local_snapshot()` (queries, not a loaded tree) finds
    exactly what it finds over the loaded dict: changes, removals in scope only, and a
    renamed file's blocks reused without chunking."""
    with Index.open(tree.parent / "index.db") as index:
        first = run(tree, chunker)
        index.put_many("local", first.changed.values())
        os.rename(tree / "docs/big.bin", tree / "moved.bin")
        shutil.rmtree(tree / "docs/sub")
        write(tree / "empty/new.txt", "new")
        (tree / "a.txt").unlink()  # outside the rescanned paths: not a removal yet
        only = {"docs/big.bin", "moved.bin", "docs/sub", "empty/new.txt"}
        chunker.calls.clear()
        over_dict = run(tree, chunker, index.all("local"), only=only)
        dict_reads = sorted(chunker.names())
        chunker.calls.clear()
        ignore = Ignore.from_root(tree)
        over_rows = scan(tree, index.local_snapshot(), ignore, PARAMS, chunker, only=only)
        assert sorted(chunker.names()) == dict_reads == ["new.txt"]
        assert over_rows.changed == over_dict.changed
        assert (
            over_rows.removed
            == over_dict.removed
            == {
                "docs/big.bin",
                "docs/sub",
                "docs/sub/deep.md",
            }
        )
        assert over_rows.changed["moved.bin"].blocks == first.changed["docs/big.bin"].blocks
        assert "a.txt" not in over_rows.removed
