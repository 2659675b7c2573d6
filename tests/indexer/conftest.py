"""Helpers for indexer tests: a counting stand-in for the chunker, file writers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import blake3
import pytest

from syncd.errors import FileError

PAST_NS = 1_600_000_000 * 10**9  # files get old mtimes: nothing depends on "now"


@dataclass(frozen=True)
class Ref:
    offset: int
    length: int
    id: str


class CountingChunker:
    """Fixed-size chunks with real BLAKE3 ids; records every file it reads."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.calls: list[Path] = []

    def __call__(self, path: Path, params: object) -> list[Ref]:
        self.calls.append(Path(path))
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise FileError(str(path), os.strerror(exc.errno or 0)) from None
        pieces = [(off, data[off : off + self.size]) for off in range(0, len(data), self.size)]
        return [Ref(off, len(piece), blake3.blake3(piece).hexdigest()) for off, piece in pieces]

    def names(self) -> list[str]:
        return sorted(p.name for p in self.calls)


def write(path: Path, data: bytes | str, mtime_ns: int | None = None) -> Path:
    """Write a file (creating folders) and give it a fixed, old mtime."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    stamp = PAST_NS if mtime_ns is None else mtime_ns
    os.utime(path, ns=(stamp, stamp))
    return path


@pytest.fixture
def chunker() -> CountingChunker:
    return CountingChunker()


def is_privileged() -> bool:
    """True if this process reads files whatever their permission bits (root)."""
    return os.geteuid() == 0 if hasattr(os, "geteuid") else False
