"""The wire format shared by client and server: batch chunk framing and header names.

A batch of chunks travels as one body of frames, each frame being
    32 bytes   the chunk id (BLAKE3-256, raw)
     4 bytes   the chunk length, unsigned big-endian
     N bytes   the chunk's plaintext
The whole body may be zstd-compressed (Content-Encoding: zstd).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

import zstandard

BATCH_CONTENT_TYPE = "application/vnd.syncd.chunks"
CHUNK_CONTENT_TYPE = "application/octet-stream"
ZSTD = "zstd"
ID_BYTES = 32
_HEADER = struct.Struct(">32sI")


class FrameError(ValueError):
    """A batch body that does not parse."""


def is_chunk_id(value: object) -> bool:
    """True for a lowercase hex BLAKE3-256 id."""
    if not isinstance(value, str) or len(value) != 2 * ID_BYTES:
        return False
    return all(c in "0123456789abcdef" for c in value)


def encode_frames(chunks: Iterable[tuple[str, bytes | memoryview]]) -> bytes:
    parts: list[bytes | memoryview] = []
    for chunk_id, data in chunks:
        parts.append(_HEADER.pack(bytes.fromhex(chunk_id), len(data)))
        parts.append(data)
    return b"".join(parts)


def iter_frames(body: bytes | memoryview, *, max_chunk: int) -> Iterator[tuple[str, memoryview]]:
    """Split a batch body into (id, data); raise FrameError on any inconsistency."""
    view = memoryview(body)
    pos = 0
    while pos < len(view):
        if len(view) - pos < _HEADER.size:
            raise FrameError("truncated frame header")
        raw_id, length = _HEADER.unpack_from(view, pos)
        pos += _HEADER.size
        if length > max_chunk:
            raise FrameError(f"chunk of {length} bytes exceeds the maximum of {max_chunk}")
        if len(view) - pos < length:
            raise FrameError("truncated frame body")
        yield raw_id.hex(), view[pos : pos + length]
        pos += length


def zstd_compress(data: bytes | memoryview, level: int = 3) -> bytes:
    return zstandard.ZstdCompressor(level=level).compress(data)


def zstd_decompress(data: bytes, *, max_size: int) -> bytes:
    """Decompress, refusing output larger than `max_size` (a zip-bomb guard)."""
    dctx = zstandard.ZstdDecompressor()
    out = bytearray()
    reader = dctx.stream_reader(data)
    while True:
        piece = reader.read(1 << 20)
        if not piece:
            break
        out += piece
        if len(out) > max_size:
            raise FrameError(f"decompressed body exceeds {max_size} bytes")
    return bytes(out)
