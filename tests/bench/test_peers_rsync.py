"""The rsync contender's push carries every change, including a same-size edit made within
the second of the previous push (rsync's quick check compares whole seconds by default)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.peers.contenders.rsync import Rsync

pytestmark = pytest.mark.skipif(shutil.which("rsync") is None, reason="no rsync")


def test_push_carries_a_same_size_edit_made_in_the_same_second(tmp_path: Path):
    c = Rsync()
    try:
        c.start(tmp_path / "rsync")
        data = bytearray(b"x" * 200_000)
        (c.a / "f.bin").write_bytes(data)
        c.push()
        assert (c.b / "f.bin").read_bytes() == data
        for i in range(5):  # each edit follows its push within milliseconds
            with open(c.a / "f.bin", "r+b") as f:
                f.seek(100_000 + i)
                f.write(b"y")
            data[100_000 + i] = ord("y")
            c.push()
            assert (c.b / "f.bin").read_bytes() == data, f"edit {i} not carried"
        assert c.wire().up > 0
    finally:
        c.stop()
