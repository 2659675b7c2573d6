"""Content-defined chunking: FastCDC 2020 boundaries, BLAKE3-256 chunk ids (D1, D2)."""

from syncd.chunker.core import (
    ChunkRef,
    chunk_bytes,
    chunk_file,
    chunk_file_keeping,
    chunk_id,
    chunk_stream,
    iter_chunks_stream,
)
from syncd.chunker.params import DEFAULT_PARAMS, MAX_CHUNK_SIZE_LIMIT, ChunkParams

__all__ = [
    "DEFAULT_PARAMS",
    "MAX_CHUNK_SIZE_LIMIT",
    "ChunkParams",
    "ChunkRef",
    "chunk_bytes",
    "chunk_file",
    "chunk_file_keeping",
    "chunk_id",
    "chunk_stream",
    "iter_chunks_stream",
]
