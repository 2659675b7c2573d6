"""The bytes of small files as the scan read them, for the upload that follows.

The scan reads and hashes every new file to learn its block list; the upload right
after needs those same bytes. Kept here, they are sent without a second read and a
second hash. Contents are found by the very block list they were hashed into, so they
are never sent under ids they do not have: for a file changed since the scan, what is
sent is the version the scan saw and recorded (the watcher reports the newer one,
uploaded next), as if the change had come a moment after the upload.
"""

from __future__ import annotations

from collections.abc import Iterator

from syncd.indexer.state import Block

KEEP_LIMIT = 128 << 20  # bytes kept in all; files scanned past it are read again
KEEP_FILE = 1 << 20  # only files up to this size are kept

Blocks = tuple[Block, ...]


class ScannedContent:
    """Whole contents of small files by the block list each was hashed into, up to
    `limit` bytes in all. Once full, later files are not kept: the upload follows the
    scan's order, roughly, so the first ones scanned are the first ones needed."""

    def __init__(self, limit: int = KEEP_LIMIT, file_limit: int = KEEP_FILE) -> None:
        self.limit = limit
        self.file_limit = file_limit
        self._kept: dict[Blocks, bytes] = {}
        self._size = 0

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def size(self) -> int:
        return self._size

    def room(self) -> int:
        """The largest file that would still be kept."""
        return max(0, min(self.file_limit, self.limit - self._size))

    def keep(self, blocks: Blocks, data: bytes) -> None:
        """Keep `data`, hashed into `blocks` (whose sizes must add up to it)."""
        if not blocks or sum(b.size for b in blocks) != len(data) or blocks in self._kept:
            return
        if len(data) <= self.room():
            self._kept[blocks] = data
            self._size += len(data)

    def take(self, blocks: Blocks) -> bytes | None:
        """The content hashed into exactly `blocks`, if kept; forgotten once taken."""
        data = self._kept.pop(blocks, None)
        if data is not None:
            self._size -= len(data)
        return data

    def clear(self) -> None:
        self._kept.clear()
        self._size = 0


def slices(data: bytes, wanted: list[tuple[int, Block]]) -> Iterator[tuple[str, memoryview]]:
    """(id, bytes) of each wanted (offset, block) of `data`, without copying."""
    view = memoryview(data)
    for offset, block in wanted:
        yield block.id, view[offset : offset + block.size]
