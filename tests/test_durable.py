from pathlib import Path

import pytest

from syncd.durable import fsync_dir


def test_fsync_dir_flushes_a_folder_and_refuses_anything_else(tmp_path: Path):
    (tmp_path / "new").write_bytes(b"x")
    fsync_dir(tmp_path)
    fsync_dir(str(tmp_path))
    with pytest.raises(NotADirectoryError):
        fsync_dir(tmp_path / "new")
    with pytest.raises(FileNotFoundError):
        fsync_dir(tmp_path / "gone")
