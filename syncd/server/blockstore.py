"""Content-addressed chunk storage through obstore: local disk, memory or S3, by URL.

Chunks are immutable and named by their BLAKE3 id, so a put is idempotent and a stored
chunk never changes. Keys fan out by the id's first bytes: `ab/cd/abcd…`. A large chunk
is streamed in: written under `staging/` while the caller hashes it, and moved to its
id's key only once verified, so no key ever holds bytes that do not match its name.
Reads stream out in pieces; the server never holds more than a piece of a large chunk.

URLs (`open_blockstore`):
- `file:///abs/dir` — the embedded default: chunks in pack files under DIR, streamed
  ones as one file each (`blockstore_pack`);
- `memory://` — in-process, for tests;
- `s3://BUCKET[/PREFIX]?endpoint=URL&region=R&access_key_id=K&secret_access_key=S`
  — any S3-compatible store (see `blockstore_s3`); credentials may instead come from
  the standard `AWS_*` environment variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import urlparse

import obstore
from obstore.exceptions import BaseError, NotFoundError
from obstore.store import MemoryStore, ObjectStore, S3Store

from syncd.server.errors import BackendUnavailable

PIECE = 1 << 20  # streamed reads come in pieces of at least this size (the last may be less)
PART = 5 << 20  # multipart part size for streamed writes (S3's minimum part)
T = TypeVar("T")
IO_CONCURRENCY = 16  # object reads or writes in flight for one get_many or put_many


class ChunkNotFound(KeyError):
    pass


@dataclass
class ChunkReader:
    """A stored chunk being read: its size, then its bytes in pieces."""

    size: int
    pieces: AsyncIterator[bytes]


class BlockStore(Protocol):
    async def put(self, chunk_id: str, data: bytes | memoryview) -> None: ...
    async def put_many(self, chunks: list[tuple[str, bytes | memoryview]]) -> None: ...
    async def put_stream(
        self, chunk_id: str, pieces: AsyncIterable[bytes], verify: Callable[[], Awaitable[None]]
    ) -> None: ...
    async def get(self, chunk_id: str) -> bytes: ...
    async def get_many(self, chunk_ids: list[str]) -> list[bytes | memoryview]: ...
    async def open(self, chunk_id: str) -> ChunkReader: ...
    async def has(self, chunk_id: str) -> bool: ...
    async def delete(self, chunk_id: str) -> None: ...
    async def check(self) -> None: ...
    async def signed_url(self, chunk_id: str, ttl: timedelta) -> str | None: ...
    def close(self) -> None: ...


async def bounded(jobs: list[Awaitable[T]], limit: int = IO_CONCURRENCY) -> list[T]:
    """Await `jobs` with at most `limit` running at once; results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[T]) -> T:
        async with gate:
            return await job

    return await asyncio.gather(*(one(j) for j in jobs))


def chunk_key(chunk_id: str) -> str:
    return f"{chunk_id[:2]}/{chunk_id[2:4]}/{chunk_id}"


_MISSING = (NotFoundError, FileNotFoundError)
_FAILED = (BaseError, OSError, ConnectionError, TimeoutError)


class ObstoreBlockStore:
    """Every backend: obstore gives local disk, memory and S3 one API."""

    def __init__(self, store: ObjectStore, describe: str) -> None:
        self._store = store
        self.describe = describe  # for messages: never carries credentials

    def _unavailable(self, exc: BaseException, what: str) -> BackendUnavailable:
        return BackendUnavailable("blocks", f"{self.describe}: {what} failed: {exc}")

    async def put(self, chunk_id: str, data: bytes | memoryview) -> None:
        try:
            await obstore.put_async(self._store, chunk_key(chunk_id), bytes(data))
        except _FAILED as exc:
            raise self._unavailable(exc, "put") from exc

    async def put_many(self, chunks: list[tuple[str, bytes | memoryview]]) -> None:
        """`put` each; up to IO_CONCURRENCY requests in flight."""
        await bounded([self.put(chunk_id, data) for chunk_id, data in chunks])

    async def put_stream(
        self, chunk_id: str, pieces: AsyncIterable[bytes], verify: Callable[[], Awaitable[None]]
    ) -> None:
        """Stream `pieces` in (multipart on S3), await `verify()` once they are all read
        (it raises to refuse them), then move them to the chunk's key. Whatever fails,
        nothing is left under the chunk's key and the staging object is removed."""
        staging = f"staging/{uuid.uuid4().hex}"
        body_failed: list[BaseException] = []

        async def tracked() -> AsyncIterator[bytes]:
            try:
                async for piece in pieces:
                    yield piece
            except BaseException as exc:
                body_failed.append(exc)
                raise

        try:
            await obstore.put_async(self._store, staging, tracked(), chunk_size=PART)
        except _FAILED as exc:
            if body_failed:  # the body's own failure (a refused or broken upload), unchanged
                raise body_failed[0] from None
            raise self._unavailable(exc, "streamed put") from exc
        # obstore aborts the multipart upload when the body fails: nothing is written.
        try:
            await verify()
            await obstore.rename_async(self._store, staging, chunk_key(chunk_id))
        except _FAILED as exc:
            await self._forget(staging)
            raise self._unavailable(exc, "rename") from exc
        except BaseException:
            await self._forget(staging)
            raise

    async def _forget(self, key: str) -> None:
        with contextlib.suppress(*_FAILED):  # an orphan under staging/ is collectable
            await obstore.delete_async(self._store, key)

    async def get(self, chunk_id: str) -> bytes:
        try:
            result = await obstore.get_async(self._store, chunk_key(chunk_id))
            return bytes(await result.bytes_async())
        except _MISSING:
            raise ChunkNotFound(chunk_id) from None
        except _FAILED as exc:
            raise self._unavailable(exc, "get") from exc

    async def get_many(self, chunk_ids: list[str]) -> list[bytes | memoryview]:
        """Each chunk's bytes, in order; up to IO_CONCURRENCY requests in flight."""
        return list(await bounded([self.get(c) for c in chunk_ids]))

    async def open(self, chunk_id: str) -> ChunkReader:
        try:
            result = await obstore.get_async(self._store, chunk_key(chunk_id))
        except _MISSING:
            raise ChunkNotFound(chunk_id) from None
        except _FAILED as exc:
            raise self._unavailable(exc, "get") from exc
        return ChunkReader(result.meta["size"], self._pieces(result))

    async def _pieces(self, result: obstore.GetResult) -> AsyncIterator[bytes]:
        try:
            async for piece in result.stream(min_chunk_size=PIECE):
                yield bytes(piece)
        except _FAILED as exc:
            raise self._unavailable(exc, "streamed get") from exc

    async def has(self, chunk_id: str) -> bool:
        try:
            await obstore.head_async(self._store, chunk_key(chunk_id))
        except _MISSING:
            return False
        except _FAILED as exc:
            raise self._unavailable(exc, "head") from exc
        return True

    async def delete(self, chunk_id: str) -> None:
        try:
            await obstore.delete_async(self._store, chunk_key(chunk_id))
        except _MISSING:
            return
        except _FAILED as exc:
            raise self._unavailable(exc, "delete") from exc

    async def check(self) -> None:
        """A real round trip: write, read back and delete a probe object of its own."""
        token = secrets.token_bytes(16)
        probe = f"health/{uuid.uuid4().hex}"  # one per check: checks may run concurrently
        try:
            await obstore.put_async(self._store, probe, token)
            got = bytes(await (await obstore.get_async(self._store, probe)).bytes_async())
            await obstore.delete_async(self._store, probe)
        except _FAILED as exc:
            raise self._unavailable(exc, "health round trip") from exc
        if got != token:
            raise BackendUnavailable("blocks", f"{self.describe}: read back other bytes")

    async def signed_url(self, chunk_id: str, ttl: timedelta) -> str | None:
        """A short-lived URL that lets anyone holding it GET this chunk (S3 only)."""
        if not isinstance(self._store, S3Store):
            return None
        try:
            return await obstore.sign_async(self._store, "GET", chunk_key(chunk_id), ttl)
        except _FAILED as exc:
            raise self._unavailable(exc, "sign") from exc

    def close(self) -> None:
        """Nothing to release: obstore holds no files open between calls."""


def open_blockstore(url: str) -> BlockStore:
    """A block store by URL: `file:///DIR`, `memory://` or `s3://BUCKET/PREFIX?...`."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from syncd.server.blockstore_pack import PackBlockStore

        root = Path(parsed.path)
        root.mkdir(parents=True, exist_ok=True)
        return PackBlockStore(root)
    if parsed.scheme == "memory":
        return ObstoreBlockStore(MemoryStore(), "memory://")
    if parsed.scheme == "s3":
        from syncd.server.blockstore_s3 import open_s3

        store, describe = open_s3(url)
        return ObstoreBlockStore(store, describe)
    raise ValueError(
        f"unsupported chunk store URL {url!r} (expected file:///DIR, memory:// or s3://BUCKET)"
    )
