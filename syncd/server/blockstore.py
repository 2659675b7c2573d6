"""Content-addressed chunk storage through obstore (local disk, memory; S3 later).

Chunks are immutable and named by their BLAKE3 id, so a put is idempotent and a stored
chunk never changes. Keys fan out by the id's first bytes: `ab/cd/abcd…`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

import obstore
from obstore.exceptions import NotFoundError
from obstore.store import LocalStore, MemoryStore, ObjectStore


class ChunkNotFound(KeyError):
    pass


class BlockStore(Protocol):
    async def put(self, chunk_id: str, data: bytes | memoryview) -> None: ...
    async def get(self, chunk_id: str) -> bytes: ...
    async def has(self, chunk_id: str) -> bool: ...


def chunk_key(chunk_id: str) -> str:
    return f"{chunk_id[:2]}/{chunk_id[2:4]}/{chunk_id}"


class ObstoreBlockStore:
    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    async def put(self, chunk_id: str, data: bytes | memoryview) -> None:
        await obstore.put_async(self._store, chunk_key(chunk_id), bytes(data))

    async def get(self, chunk_id: str) -> bytes:
        try:
            result = await obstore.get_async(self._store, chunk_key(chunk_id))
        except (NotFoundError, FileNotFoundError):
            raise ChunkNotFound(chunk_id) from None
        return bytes(await result.bytes_async())

    async def has(self, chunk_id: str) -> bool:
        try:
            await obstore.head_async(self._store, chunk_key(chunk_id))
        except (NotFoundError, FileNotFoundError):
            return False
        return True


def open_blockstore(url: str) -> BlockStore:
    """`file:///abs/dir` (embedded default) or `memory://` (tests)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        root = Path(parsed.path)
        root.mkdir(parents=True, exist_ok=True)
        return ObstoreBlockStore(LocalStore(prefix=root, mkdir=True))
    if parsed.scheme == "memory":
        return ObstoreBlockStore(MemoryStore())
    raise ValueError(f"unsupported chunk store URL {url!r} (expected file:///DIR or memory://)")
