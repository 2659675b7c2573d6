"""Cutting bytes into content-defined chunks and naming each by its BLAKE3-256.

Boundaries come from pyfastcdc's compiled FastCDC 2020. Files are read in segments of
SEGMENT bytes: the last chunk of a segment is carried into the next one, and since
FastCDC decides a cut from the chunk's own start, the result is identical to cutting
the whole file at once, in bounded memory. Hashing of one segment's chunks runs in a
worker thread (BLAKE3 releases the GIL) while the next segment is read and cut.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import blake3
from pyfastcdc import FastCDC

from syncd.chunker.params import ChunkParams
from syncd.errors import FileError

SEGMENT = 4 * 1024 * 1024
SMALL_INLINE = 256 * 1024  # segments up to this size are hashed on the calling thread
_local = threading.local()
_hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="syncd-hash")


@dataclass(frozen=True, slots=True)
class ChunkRef:
    offset: int
    length: int
    id: str


def chunk_id(data: bytes | bytearray | memoryview) -> str:
    return blake3.blake3(data).hexdigest()


def _cdc(params: ChunkParams) -> FastCDC:
    """One FastCDC per thread and parameters (instances are not thread-safe)."""
    cache: dict[ChunkParams, FastCDC] = getattr(_local, "cdc", None) or {}
    _local.cdc = cache
    cdc = cache.get(params)
    if cdc is None:
        cdc = FastCDC(
            params.avg_size, min_size=params.min_size, max_size=params.max_size,
            normalized_chunking=1,
        )  # fmt: skip
        cache[params] = cdc
    return cdc


def _fill(stream: BinaryIO, carry: bytes, segment: int) -> tuple[bytearray, bool]:
    """One segment: `carry` followed by up to `segment` fresh bytes, read in place."""
    buf = bytearray(len(carry) + segment)
    buf[: len(carry)] = carry
    view = memoryview(buf)
    pos = len(carry)
    while pos < len(buf):
        n = stream.readinto(view[pos:])  # type: ignore[attr-defined]
        if not n:
            break
        pos += n
    eof = pos < len(buf)
    view.release()
    if eof:
        del buf[pos:]
    return buf, eof


def _segments(
    stream: BinaryIO, params: ChunkParams, size_hint: int | None = None
) -> Iterator[tuple[int, bytearray, list]]:
    """Yield (base offset, buffer, cuts) where cuts are final (offset, length) pairs.

    `size_hint` (a file's size) keeps the buffer of a small file small.
    """
    cdc = _cdc(params)
    carry, base = b"", 0
    segment = SEGMENT if size_hint is None else max(1, min(SEGMENT, size_hint + 1))
    while True:
        buf, eof = _fill(stream, carry, segment)
        cuts = [(c.offset, c.length) for c in cdc.cut_buf(buf)] if buf else []
        if not eof and cuts:
            last_off, _ = cuts.pop()
            carry = bytes(buf[last_off:])
        else:
            carry = b""
        yield base, buf, cuts
        base += len(buf) - len(carry)
        if eof:
            return


def _hash_all(buf: bytearray, cuts: list[tuple[int, int]]) -> list[str]:
    view = memoryview(buf)
    return [blake3.blake3(view[o : o + n]).hexdigest() for o, n in cuts]


def iter_chunks_stream(
    stream: BinaryIO, params: ChunkParams, size_hint: int | None = None
) -> Iterator[tuple[ChunkRef, memoryview]]:
    """Yield each chunk's (ref, data); data stays valid while the caller holds it."""
    pending: tuple[int, bytearray, list, Future[list[str]]] | None = None
    for base, buf, cuts in _segments(stream, params, size_hint):
        if len(buf) <= SMALL_INLINE:  # not worth a thread hand-off
            job = _done(_hash_all(buf, cuts))
        else:
            job = _hasher.submit(_hash_all, buf, cuts)
        if pending is not None:
            yield from _emit(*pending)
        pending = (base, buf, cuts, job)
    if pending is not None:
        yield from _emit(*pending)


def _done(ids: list[str]) -> Future[list[str]]:
    done: Future[list[str]] = Future()
    done.set_result(ids)
    return done


def _emit(
    base: int, buf: bytearray, cuts: list[tuple[int, int]], job: Future[list[str]]
) -> Iterator[tuple[ChunkRef, memoryview]]:
    view = memoryview(buf)
    for (off, length), cid in zip(cuts, job.result(), strict=True):
        yield ChunkRef(base + off, length, cid), view[off : off + length]


def chunk_stream(
    stream: BinaryIO, params: ChunkParams, size_hint: int | None = None
) -> list[ChunkRef]:
    return [ref for ref, _ in iter_chunks_stream(stream, params, size_hint)]


def chunk_bytes(data: bytes | bytearray | memoryview, params: ChunkParams) -> list[ChunkRef]:
    view = memoryview(data)
    return [
        ChunkRef(c.offset, c.length, chunk_id(view[c.offset : c.offset + c.length]))
        for c in _cdc(params).cut_buf(data)
    ] if len(view) else []  # fmt: skip


def chunk_file(path: str | os.PathLike[str], params: ChunkParams) -> list[ChunkRef]:
    """Chunk a file of any size in bounded memory; OSError becomes FileError."""
    return chunk_file_keeping(path, params, 0)[0]


def chunk_file_keeping(
    path: str | os.PathLike[str], params: ChunkParams, keep_upto: int
) -> tuple[list[ChunkRef], bytes | None]:
    """`chunk_file`, and the bytes it cut if the file is no larger than `keep_upto`
    (read whole, in one piece); None for a bigger file, chunked in bounded memory."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > keep_upto:
                return chunk_stream(f, params, size), None
            data = f.read(size + 1)  # one byte more: a file that grew is cut in full
            return chunk_bytes(data, params), data
    except OSError as exc:
        raise FileError(str(Path(path)), exc.strerror or str(exc)) from None
