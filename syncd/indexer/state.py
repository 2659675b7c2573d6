"""The state of one path on one side (local scan, remote journal, or synced base).

A deletion is the absence of a state. Only content (the ordered block list), the kind
and the executable bit count as a change; mtime travels with content but an mtime-only
change is not synced (as in Dropbox).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

Kind = Literal["file", "dir"]


@dataclass(frozen=True, slots=True)
class Block:
    id: str  # BLAKE3-256 of the chunk's plaintext, lowercase hex
    size: int


@dataclass(frozen=True, slots=True)
class FileState:
    path: str  # sync path: relative, '/'-separated, NFC (see syncd.paths)
    kind: Kind
    size: int = 0
    mode: int = 0o644  # permission bits (st_mode & 0o777)
    mtime_ns: int = 0
    blocks: tuple[Block, ...] = field(default=())
    rev: int | None = None  # server revision (remote and base); None on the local side
    inode: int | None = None  # local side only

    @property
    def executable(self) -> bool:
        return bool(self.mode & 0o100)

    def same_content(self, other: FileState | None) -> bool:
        """True if `other` holds what this holds: kind, blocks and executable bit."""
        if other is None:
            return False
        if self.kind != other.kind:
            return False
        if self.kind == "dir":
            return True
        return self.blocks == other.blocks and self.executable == other.executable

    def with_rev(self, rev: int | None) -> FileState:
        return replace(self, rev=rev)
