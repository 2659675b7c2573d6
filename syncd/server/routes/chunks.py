"""Chunks: which do I lack, upload (one or a batch), download (one or a batch).

Every answer is per namespace (D3): a namespace learns about, and may fetch, only the
chunks it uploaded itself. Uploads are verified: the server recomputes each BLAKE3 id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import blake3
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from syncd.server.app import BackendsDep, NamespaceDep, read_body, run_sync
from syncd.server.blockstore import ChunkNotFound
from syncd.server.errors import ApiError
from syncd.server.routes.chunk_stream import receive_chunk, send_chunk, wants_stream
from syncd.server.schemas import IdsRequest
from syncd.wire import (
    BATCH_CONTENT_TYPE,
    ZSTD,
    FrameError,
    encode_frames,
    is_chunk_id,
    iter_frames,
    zstd_decompress,
)

router = APIRouter(tags=["chunks"])
_THREAD_HASH_MIN = 256 * 1024  # hash bigger bodies off the event loop
CACHE_FOREVER = "private, max-age=31536000, immutable"
STORE_CONCURRENCY = 16  # chunks read from the store for each piece of a batch download


def _check_ids(ids: list[str]) -> None:
    bad = [i for i in ids if not is_chunk_id(i)]
    if bad:
        raise ApiError(
            400, "bad_chunk_id", "chunk ids are 64 lowercase hex characters", bad=bad[:20]
        )


async def _digest(data: bytes | memoryview) -> str:
    if len(data) >= _THREAD_HASH_MIN:
        return await run_sync(lambda: blake3.blake3(data).hexdigest())
    return blake3.blake3(data).hexdigest()


async def _decoded_body(request: Request, limit: int) -> bytes:
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding == ZSTD:
        raw = await read_body(request, limit)
        try:
            return zstd_decompress(raw, max_size=limit)
        except FrameError as exc:
            raise ApiError(413, "too_large", str(exc)) from None
        except Exception:
            raise ApiError(400, "bad_encoding", "body is not valid zstd") from None
    if encoding not in ("identity", ""):
        raise ApiError(415, "unsupported_encoding", f"unsupported Content-Encoding {encoding!r}")
    return await read_body(request, limit)


async def _admit(b: BackendsDep, ns: int, sizes: dict[str, int]) -> list[tuple[str, int]]:
    """The chunks new to this namespace, refused (507) if they would pass its quota."""
    if b.quota.limit is None:
        return []
    new_here = [(c, sizes[c]) for c in await run_sync(b.meta.missing_chunks, ns, list(sizes))]
    await run_sync(b.quota.check, ns, new_here)
    return new_here


async def _record(b: BackendsDep, ns: int, sizes: dict[str, int], new_here: list) -> None:
    await run_sync(b.meta.add_chunks, ns, list(sizes.items()))
    b.quota.stored(ns, new_here)


async def _store(b: BackendsDep, ns: int, chunks: list[tuple[str, bytes | memoryview]]) -> None:
    """Write new chunks to the store, then record them: a crash in between leaves only
    orphans (collectable), never a reference to nothing (D5)."""
    sizes = {cid: len(data) for cid, data in chunks}
    new_here = await _admit(b, ns, sizes)
    known = await run_sync(b.meta.stored_chunks, [cid for cid, _ in chunks])
    fresh = {cid: data for cid, data in chunks if cid not in known}
    await b.blocks.put_many(list(fresh.items()))
    await _record(b, ns, sizes, new_here)


@router.post("/v1/ns/{ns}/chunks/missing", summary="Which of these chunks do I lack?")
async def missing(body: IdsRequest, ns: NamespaceDep, b: BackendsDep) -> dict:
    _check_ids(body.ids)
    return {"missing": await run_sync(b.meta.missing_chunks, ns.id, body.ids)}


@router.put(
    "/v1/ns/{ns}/chunks/{chunk_id}",
    summary="Upload one chunk (raw body, optional Content-Encoding: zstd)",
)
async def put_chunk(chunk_id: str, request: Request, ns: NamespaceDep, b: BackendsDep) -> dict:
    _check_ids([chunk_id])
    if wants_stream(request):
        new_here: list[tuple[str, int]] = []

        async def admit(size: int) -> None:
            new_here.extend(await _admit(b, ns.id, {chunk_id: size}))

        size = await receive_chunk(request, b, ns.id, chunk_id, ns.chunk_max, admit)
        await _record(b, ns.id, {chunk_id: size}, new_here)
        return {"id": chunk_id, "size": size}
    data = await _decoded_body(request, ns.chunk_max)
    if await _digest(data) != chunk_id:
        raise ApiError(400, "hash_mismatch", "the body's BLAKE3 does not match the chunk id")
    await _store(b, ns.id, [(chunk_id, data)])
    return {"id": chunk_id, "size": len(data)}


@router.post(
    "/v1/ns/{ns}/chunks",
    summary=f"Upload many chunks in one body ({BATCH_CONTENT_TYPE} frames, optional zstd)",
)
async def put_batch(request: Request, ns: NamespaceDep, b: BackendsDep) -> dict:
    body = await _decoded_body(request, b.config.max_batch_bytes)
    try:
        frames = list(iter_frames(body, max_chunk=ns.chunk_max))
    except FrameError as exc:
        code = 413 if "exceeds" in str(exc) else 400
        raise ApiError(code, "too_large" if code == 413 else "bad_frames", str(exc)) from None
    bad = [cid for cid, data in frames if await _digest(data) != cid]
    if bad:
        raise ApiError(
            400, "hash_mismatch", "some chunks do not match their ids; none stored", bad=bad
        )
    await _store(b, ns.id, frames)
    return {"stored": [cid for cid, _ in frames]}


@router.get(
    "/v1/ns/{ns}/chunks/{chunk_id}",
    summary="Download one chunk",
    responses={307: {"description": "With --chunk-redirect: fetch it from this signed URL"}},
)
async def get_chunk(chunk_id: str, request: Request, ns: NamespaceDep, b: BackendsDep) -> Response:
    _check_ids([chunk_id])
    if await run_sync(b.meta.owns_chunk, ns.id, chunk_id) is None:
        raise ApiError(404, "unknown_chunk", f"chunk {chunk_id} is not in this namespace")
    etag = f'"{chunk_id}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_FOREVER}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if b.config.chunk_redirect_ttl:  # D3 checked above: only now is a URL handed out
        ttl = timedelta(seconds=b.config.chunk_redirect_ttl)
        signed = await b.blocks.signed_url(chunk_id, ttl)
        if signed is not None:
            headers = {"Location": signed, "ETag": etag, "Cache-Control": "private, no-store"}
            return Response(status_code=307, headers=headers)
    try:
        reader = await b.blocks.open(chunk_id)
    except ChunkNotFound:
        raise ApiError(404, "unknown_chunk", f"chunk {chunk_id} is missing from storage") from None
    return await send_chunk(reader, request, headers)


@router.post(
    "/v1/ns/{ns}/chunks/get",
    summary=f"Download many chunks as one {BATCH_CONTENT_TYPE} body",
    response_class=StreamingResponse,
)
async def get_batch(body: IdsRequest, ns: NamespaceDep, b: BackendsDep) -> StreamingResponse:
    _check_ids(body.ids)
    ids = list(dict.fromkeys(body.ids))
    unknown = await run_sync(b.meta.missing_chunks, ns.id, ids)
    if unknown:
        raise ApiError(404, "unknown_chunk", "some chunks are not in this namespace", ids=unknown)

    async def frames() -> AsyncIterator[bytes]:
        for start in range(0, len(ids), STORE_CONCURRENCY):
            window = ids[start : start + STORE_CONCURRENCY]
            datas = await b.blocks.get_many(window)
            yield encode_frames(list(zip(window, datas, strict=True)))

    return StreamingResponse(frames(), media_type=BATCH_CONTENT_TYPE)
