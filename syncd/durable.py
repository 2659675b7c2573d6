"""Flushing a folder's entries to disk, for the client's folder and the server's store."""

from __future__ import annotations

import os


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make the names created, renamed or removed in folder `path` durable (fsync(2)
    of the folder itself). Raises OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
