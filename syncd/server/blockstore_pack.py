"""The embedded chunk store: chunks appended to pack files, indexed in SQLite.

One file per chunk costs an inode, a directory entry and often a new fan-out folder per
chunk; on some disks creating a file costs more than writing 100 KiB into it. Like
Git's and restic's packs, this store appends the chunks of many uploads to one file
and keeps `id -> (pack, offset, size)` in an index:

    DIR/packs/index.db          SQLite (WAL): chunks(id, pack, offset, size)
    DIR/packs/pack-<hex>.dat    "SYNCDPK1", then records: id (32 bytes), size (4, BE), data

Writes are group-committed by one writer thread: every chunk that arrived while the
previous group was being written is appended in one `writev`, the pack is
`fdatasync`ed, and only then are the index rows committed (`synchronous=FULL`; a new
pack's folder entry is flushed first). So the index never names bytes that are not on
disk; a crash leaves at most unindexed bytes at a pack's end
(dead space, like an orphan chunk: D5). Each process appends to a pack of its own,
so several server processes may share the folder. A read checks the record header
(id and size) in front of the bytes it returns.

Chunks streamed in (`put_stream`, the large ones), and chunks stored before packs
existed, stay loose files (`ab/cd/<id>`) through `ObstoreBlockStore`; every read
looks in the index first and falls back to the loose file. A delete removes the index
row; its bytes become dead space in the pack (no compaction yet).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import struct
import threading
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from obstore.store import LocalStore

from syncd.durable import fsync_dir
from syncd.server.blockstore import PIECE, ChunkReader, ObstoreBlockStore
from syncd.server.errors import BackendUnavailable

MAGIC = b"SYNCDPK1"
HEADER = struct.Struct(">32sI")  # chunk id (raw BLAKE3), data size
PACK_MAX = 1 << 30  # a pack that reaches this size is closed and a new one begun
IOV_MAX = 512  # buffers per writev(2) call (Linux allows 1024)
READ_SPAN = 4 << 20  # adjacent records read in one pread, up to about this many bytes

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    id BLOB PRIMARY KEY,
    pack TEXT NOT NULL,
    offset INTEGER NOT NULL,
    size INTEGER NOT NULL
) WITHOUT ROWID;
"""


class PackIndex:
    """`id -> (pack, offset, size)` in SQLite; safe to call from any thread."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            # FULL: an acknowledged chunk's row survives a power cut, so the metadata
            # that names it (committed after the ack) never outlives it
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.executescript(_SCHEMA)

    def find(self, chunk_id: str) -> tuple[str, int, int] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT pack, offset, size FROM chunks WHERE id = ?", (bytes.fromhex(chunk_id),)
            ).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def find_many(self, chunk_ids: list[str]) -> dict[str, tuple[str, int, int]]:
        """`find` for many ids at once; the ids no pack holds are left out."""
        rows = self._rows_in("id, pack, offset, size", [bytes.fromhex(c) for c in chunk_ids])
        return {raw.hex(): (pack, offset, size) for raw, pack, offset, size in rows}

    def known(self, ids: list[bytes]) -> set[bytes]:
        return {row[0] for row in self._rows_in("id", ids)}

    def _rows_in(self, columns: str, ids: list[bytes]) -> list[tuple]:
        """`columns` of the rows whose id is in `ids`, asked 500 ids at a time."""
        rows: list[tuple] = []
        with self._lock:
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                sql = f"SELECT {columns} FROM chunks WHERE id IN ({marks})"
                rows += self._conn.execute(sql, part).fetchall()
        return rows

    def add(self, rows: list[tuple[bytes, str, int, int]]) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("INSERT OR IGNORE INTO chunks VALUES (?, ?, ?, ?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def remove(self, chunk_id: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM chunks WHERE id = ?", (bytes.fromhex(chunk_id),))

    def ping(self) -> None:
        with self._lock:
            self._conn.execute("SELECT 1 FROM chunks LIMIT 1").fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _Pending:
    """One `put_many`'s chunks, waiting for the writer: settled once, when all are stored
    (one wake-up of the event loop per request, not one per chunk)."""

    __slots__ = ("chunks", "future", "loop")

    def __init__(
        self, chunks: list[tuple[bytes, bytes | memoryview]], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.chunks, self.loop = chunks, loop
        self.future: asyncio.Future[None] = loop.create_future()


class PackBlockStore:
    """`file:///DIR`: small chunks in packs, streamed ones loose; see the module doc."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.describe = f"file://{root}"
        self._store = LocalStore(prefix=root, mkdir=True)  # loose chunks, probes, staging
        self._loose = ObstoreBlockStore(self._store, self.describe)
        self.packs = root / "packs"
        self.packs.mkdir(parents=True, exist_ok=True)
        self.index = PackIndex(self.packs / "index.db")
        self._queue: list[_Pending] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._writer_fd: int | None = None
        self._writer_name = ""
        self._writer_size = 0
        self._readers: dict[str, int] = {}
        self._readers_lock = threading.Lock()
        self._thread = threading.Thread(target=self._write_loop, name="pack-writer", daemon=True)
        self._thread.start()

    def _unavailable(self, exc: BaseException, what: str) -> BackendUnavailable:
        return BackendUnavailable("blocks", f"{self.describe}: {what} failed: {exc}")

    # -- writes ------------------------------------------------------------------------
    async def put(self, chunk_id: str, data: bytes | memoryview) -> None:
        await self.put_many([(chunk_id, data)])

    async def put_many(self, chunks: list[tuple[str, bytes | memoryview]]) -> None:
        """Queue them all at once, under the writer's lock, so they go into one group
        (one writev, one fdatasync, shared with whatever else was waiting)."""
        if not chunks:
            return
        pending = _Pending(
            [(bytes.fromhex(chunk_id), data) for chunk_id, data in chunks],
            asyncio.get_running_loop(),
        )
        with self._wake:
            if self._closed:
                raise BackendUnavailable("blocks", f"{self.describe}: store is closed")
            self._queue.append(pending)
            self._wake.notify()
        # raises what the write raised; a cancelled put cancels the future, and the
        # writer stores its chunks anyway (`_settle` leaves a done future alone)
        await pending.future

    async def put_stream(
        self, chunk_id: str, pieces: AsyncIterable[bytes], verify: Callable[[], Awaitable[None]]
    ) -> None:
        await self._loose.put_stream(chunk_id, pieces, verify)

    def _write_loop(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                group, self._queue = self._queue, []
                if not group and self._closed:
                    return
            try:
                self._write_group(group)
            except Exception as exc:
                failure = self._unavailable(exc, "pack write")
                for item in group:
                    item.loop.call_soon_threadsafe(_settle, item.future, failure)
            else:
                for item in group:
                    item.loop.call_soon_threadsafe(_settle, item.future, None)

    def _write_group(self, group: list[_Pending]) -> None:
        """Append the group's new chunks, make them durable, then index them."""
        chunks = [chunk for pending in group for chunk in pending.chunks]
        stored = self.index.known([raw for raw, _ in chunks])
        fresh: dict[bytes, bytes | memoryview] = {}
        for raw, data in chunks:
            if raw not in stored:
                fresh.setdefault(raw, data)
        if not fresh:
            return
        fd = self._pack_for_append()
        rows: list[tuple[bytes, str, int, int]] = []
        buffers: list[bytes | memoryview] = []
        offset = self._writer_size
        for raw, data in fresh.items():
            buffers.append(HEADER.pack(raw, len(data)))
            buffers.append(data)
            offset += HEADER.size
            rows.append((raw, self._writer_name, offset, len(data)))
            offset += len(data)
        try:
            _write_all(fd, buffers)
            os.fdatasync(fd)
        except OSError:
            self._retire_pack()  # its tail is unknown now: later groups start a new one
            raise
        self._writer_size = offset
        self.index.add(rows)
        if self._writer_size >= PACK_MAX:
            self._retire_pack()

    def _pack_for_append(self) -> int:
        if self._writer_fd is None:
            name = f"pack-{uuid.uuid4().hex}.dat"
            fd = os.open(self.packs / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                _write_all(fd, [MAGIC])
                fsync_dir(self.packs)  # the new pack's name, before any row names it
            except OSError:
                os.close(fd)
                raise
            self._writer_fd, self._writer_name, self._writer_size = fd, name, len(MAGIC)
        return self._writer_fd

    def _retire_pack(self) -> None:
        if self._writer_fd is not None:
            os.close(self._writer_fd)
        self._writer_fd, self._writer_name, self._writer_size = None, "", 0

    # -- reads -------------------------------------------------------------------------
    def _read_packed(self, chunk_id: str) -> bytes | None:
        """The chunk's bytes from its pack, or None if no pack holds it."""
        found = self._read_many([chunk_id]).get(chunk_id)
        return None if found is None else bytes(found)

    def _read_many(self, chunk_ids: list[str]) -> dict[str, memoryview]:
        """The bytes of those of `chunk_ids` that packs hold. Records that lie next to
        each other in a pack (the chunks of one upload do) come in one pread, up to
        READ_SPAN bytes; the result's views share that buffer."""
        where = sorted(self.index.find_many(chunk_ids).items(), key=lambda kv: kv[1][:2])
        out: dict[str, memoryview] = {}
        i = 0
        while i < len(where):
            pack, first, _ = where[i][1]
            start, end, j = first - HEADER.size, first + where[i][1][2], i + 1
            while j < len(where) and end - start < READ_SPAN:
                next_pack, offset, size = where[j][1]
                if next_pack != pack or offset - HEADER.size != end:
                    break
                end, j = offset + size, j + 1
            view = memoryview(os.pread(self._reader(pack), end - start, start))
            for chunk_id, (_, offset, size) in where[i:j]:
                at = offset - HEADER.size - start
                if len(view) < at + HEADER.size + size:
                    raise OSError(f"pack {pack} ends before {chunk_id} at offset {offset}")
                raw, stored_size = HEADER.unpack_from(view, at)
                if raw.hex() != chunk_id or stored_size != size:
                    raise OSError(f"pack {pack} holds other bytes at {offset} for {chunk_id}")
                out[chunk_id] = view[at + HEADER.size : at + HEADER.size + size]
            i = j
        return out

    def _reader(self, pack: str) -> int:
        with self._readers_lock:
            fd = self._readers.get(pack)
            if fd is None:
                fd = os.open(self.packs / pack, os.O_RDONLY)
                self._readers[pack] = fd
            return fd

    async def _packed(self, chunk_id: str) -> bytes | None:
        try:
            return await asyncio.to_thread(self._read_packed, chunk_id)
        except (OSError, sqlite3.Error) as exc:
            raise self._unavailable(exc, "pack read") from exc

    async def get(self, chunk_id: str) -> bytes:
        data = await self._packed(chunk_id)
        return data if data is not None else await self._loose.get(chunk_id)

    async def get_many(self, chunk_ids: list[str]) -> list[bytes | memoryview]:
        """Each chunk's bytes, in order: the packed ones in one thread hop and one index
        query, the rest from loose files."""
        try:
            found: dict[str, bytes | memoryview] = dict(
                await asyncio.to_thread(self._read_many, chunk_ids)
            )
        except (OSError, sqlite3.Error) as exc:
            raise self._unavailable(exc, "pack read") from exc
        loose = [c for c in dict.fromkeys(chunk_ids) if c not in found]
        if loose:
            found.update(zip(loose, await self._loose.get_many(loose), strict=True))
        return [found[c] for c in chunk_ids]

    async def open(self, chunk_id: str) -> ChunkReader:
        data = await self._packed(chunk_id)
        if data is None:
            return await self._loose.open(chunk_id)
        return ChunkReader(len(data), _slices(data))

    async def has(self, chunk_id: str) -> bool:
        try:
            found = await asyncio.to_thread(self.index.find, chunk_id)
        except sqlite3.Error as exc:
            raise self._unavailable(exc, "pack index") from exc
        return found is not None or await self._loose.has(chunk_id)

    async def delete(self, chunk_id: str) -> None:
        try:
            await asyncio.to_thread(self.index.remove, chunk_id)
        except sqlite3.Error as exc:
            raise self._unavailable(exc, "pack index") from exc
        await self._loose.delete(chunk_id)

    async def check(self) -> None:
        try:
            await asyncio.to_thread(self.index.ping)
        except sqlite3.Error as exc:
            raise self._unavailable(exc, "pack index") from exc
        await self._loose.check()

    async def signed_url(self, chunk_id: str, ttl: timedelta) -> str | None:
        return None

    def close(self) -> None:
        """Finish the writes queued so far, then close the pack and the index."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join()
        self._retire_pack()
        with self._readers_lock:
            for fd in self._readers.values():
                os.close(fd)
            self._readers.clear()
        self.index.close()


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():  # the put was cancelled: its chunk is stored anyway (idempotent)
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _write_all(fd: int, buffers: list[bytes | memoryview]) -> None:
    """writev(2) every buffer in full (a short write continues where it stopped)."""
    views = [memoryview(b).cast("B") for b in buffers if len(b)]
    first = 0
    while first < len(views):
        written = os.writev(fd, views[first : first + IOV_MAX])
        while written:
            if written >= len(views[first]):
                written -= len(views[first])
                first += 1
            else:
                views[first] = views[first][written:]
                written = 0


async def _slices(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), PIECE):
        yield data[start : start + PIECE]
