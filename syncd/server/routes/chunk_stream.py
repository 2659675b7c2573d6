"""Large single chunks streamed through the server in pieces, never held whole.

An upload is hashed piece by piece while it streams into the block store's staging
area and is moved under its id only once the hash matches; a download streams the
stored object back. Bodies up to `STREAM_MIN` take the simpler buffered path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import blake3
import zstandard
from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from syncd.server.app import Backends, run_sync
from syncd.server.blockstore import ChunkReader
from syncd.server.errors import ApiError
from syncd.wire import ZSTD, zstd_compress

STREAM_MIN = 1 << 20  # bodies and chunks above this stream through; below, buffered


def wants_stream(request: Request) -> bool:
    """Stream an upload unless it is zstd (decoded with a bound) or declared small."""
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding not in ("identity", ""):
        return False
    declared = request.headers.get("content-length")
    return declared is None or not declared.isdigit() or int(declared) > STREAM_MIN


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"chunk exceeds the namespace's maximum of {limit} bytes")


async def receive_chunk(
    request: Request,
    b: Backends,
    ns: int,
    chunk_id: str,
    limit: int,
    admit: Callable[[int], Awaitable[None]],
) -> int:
    """Stream the body into the store under `chunk_id`; returns its size. `admit(size)`
    runs once the hash is verified and may refuse (quota) before the chunk is placed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    hasher = blake3.blake3()
    size = 0

    async def pieces() -> AsyncIterator[bytes]:
        nonlocal size
        async for piece in request.stream():
            size += len(piece)
            if size > limit:
                raise _too_large(limit)
            hasher.update(piece)
            yield piece

    async def verify() -> None:
        if hasher.hexdigest() != chunk_id:
            raise ApiError(400, "hash_mismatch", "the body's BLAKE3 does not match the chunk id")
        await admit(size)

    stored = await run_sync(b.meta.stored_chunks, [chunk_id])
    if chunk_id in stored:  # the bytes are there already: only prove this body is them
        async for _ in pieces():
            pass
        await verify()
        return size
    await b.blocks.put_stream(chunk_id, pieces(), verify)
    return size


async def _joined(reader: ChunkReader) -> bytes:
    return b"".join([piece async for piece in reader.pieces])


async def _zstd_stream(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    packer = zstandard.ZstdCompressor(level=1).compressobj()
    yield packer.compress(first) + packer.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    async for piece in rest:
        yield packer.compress(piece) + packer.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    yield packer.flush()


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for piece in rest:
        yield piece


def _compresses(sample: bytes) -> bool:
    return len(zstd_compress(sample, level=1)) < len(sample) * 0.9


async def send_chunk(reader: ChunkReader, request: Request, headers: dict[str, str]) -> Response:
    """The chunk as a response: zstd if asked for and it pays (judged on the first piece)."""
    zstd_ok = ZSTD in request.headers.get("accept-encoding", "")
    if reader.size <= STREAM_MIN:
        data = await _joined(reader)
        if zstd_ok and _compresses(data):
            headers["Content-Encoding"] = ZSTD
            data = zstd_compress(data, level=1)
        return Response(data, media_type="application/octet-stream", headers=headers)
    first = await anext(reader.pieces, b"")
    if zstd_ok and await run_sync(_compresses, first):
        headers["Content-Encoding"] = ZSTD
        body = _zstd_stream(first, reader.pieces)
    else:
        headers["Content-Length"] = str(reader.size)
        body = _prepend(first, reader.pieces)
    return StreamingResponse(body, media_type="application/octet-stream", headers=headers)
