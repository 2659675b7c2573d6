"""The harness's check of B: a file's digest is its content's, whatever its size, and a
change counts as carried only once every file matches and every removed path is gone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.peers import measure
from bench.peers.measure import Expect, digest, file_digest


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 << 20])
def test_file_digest_is_the_contents_digest(tmp_path: Path, size: int):
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    assert file_digest(tmp_path / "f") == digest(data)


def test_big_files_are_hashed_mapped_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(measure, "MMAP_FROM", 1 << 16)
    data = os.urandom(300_000)
    (tmp_path / "f").write_bytes(data)
    assert file_digest(tmp_path / "f") == digest(data)


def test_expect_waits_for_every_file_and_every_removal(tmp_path: Path):
    files = {"a/x.bin": os.urandom(5000), "y.bin": b"y" * 10}
    (tmp_path / "gone").write_bytes(b"old")
    want = Expect.of(tmp_path, files, absent=["gone"])
    assert not want.done()
    (tmp_path / "a").mkdir()
    (tmp_path / "a/x.bin").write_bytes(files["a/x.bin"])
    (tmp_path / "y.bin").write_bytes(b"z" * 10)  # right size, wrong bytes
    assert not want.done()
    (tmp_path / "new").write_bytes(files["y.bin"])
    os.replace(tmp_path / "new", tmp_path / "y.bin")  # as the tools place a file: renamed in
    assert not want.done()  # "gone" is still there
    (tmp_path / "gone").unlink()
    assert want.done()
