"""The embedded chunk store's packs: layout, reopening, old loose chunks, crashes, failures."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import blake3
import obstore
import pytest

from syncd.server.blockstore import ChunkNotFound, chunk_key, open_blockstore
from syncd.server.blockstore_pack import HEADER, MAGIC, PackBlockStore
from syncd.server.errors import BackendUnavailable

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def cid(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def packs(root: Path) -> list[Path]:
    return sorted((root / "packs").glob("pack-*.dat"))


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "blocks"


@pytest.fixture
def store(root):
    store = open_blockstore(root.as_uri())
    assert isinstance(store, PackBlockStore)
    yield store
    store.close()


async def test_concurrent_puts_share_one_pack_and_read_back(store, root):
    chunks = [os.urandom(n) for n in (0, 1, 5000, 70_000, 300_000)] * 3  # duplicates too
    await asyncio.gather(*(store.put(cid(c), c) for c in chunks))
    [pack] = packs(root)  # one file for all of them, no per-chunk files or folders
    assert pack.read_bytes().startswith(MAGIC)
    unique = {cid(c): c for c in chunks}
    assert pack.stat().st_size == len(MAGIC) + sum(HEADER.size + len(c) for c in unique.values())
    assert sorted(p.name for p in root.iterdir()) == ["packs"]
    for chunk_id, data in unique.items():
        assert await store.has(chunk_id)
        assert await store.get(chunk_id) == data
        reader = await store.open(chunk_id)
        assert reader.size == len(data)
        assert b"".join([p async for p in reader.pieces]) == data


async def test_a_put_of_a_stored_chunk_appends_nothing(store, root):
    data = os.urandom(10_000)
    await store.put(cid(data), data)
    size = packs(root)[0].stat().st_size
    await store.put(cid(data), memoryview(data))
    assert packs(root)[0].stat().st_size == size


async def test_reopened_store_reads_old_packs_and_writes_a_new_one(root):
    first = PackBlockStore(root)
    old = os.urandom(20_000)
    await first.put(cid(old), old)
    first.close()
    second = PackBlockStore(root)
    try:
        assert await second.get(cid(old)) == old
        new = os.urandom(20_000)
        await second.put(cid(new), new)
        assert len(packs(root)) == 2  # each process appends to a pack of its own
        assert await second.get(cid(new)) == new
    finally:
        second.close()


async def test_two_stores_on_one_folder_see_each_others_chunks(root):
    """Server processes sharing a data folder (behind one load balancer)."""
    a, b = PackBlockStore(root), PackBlockStore(root)
    try:
        x, y = os.urandom(3000), os.urandom(4000)
        await asyncio.gather(a.put(cid(x), x), b.put(cid(y), y))
        assert await a.get(cid(y)) == y and await b.get(cid(x)) == x
        assert len(packs(root)) == 2
    finally:
        a.close()
        b.close()


async def test_loose_chunks_from_before_packs_still_read(root):
    """A store written one file per chunk (`ab/cd/<id>`) keeps serving those chunks."""
    root.mkdir()
    data = os.urandom(9000)
    loose = obstore.store.LocalStore(prefix=root, mkdir=True)
    await obstore.put_async(loose, chunk_key(cid(data)), data)
    store = PackBlockStore(root)
    try:
        assert await store.has(cid(data))
        assert await store.get(cid(data)) == data
        await store.delete(cid(data))
        assert not await store.has(cid(data))
    finally:
        store.close()


async def test_delete_forgets_a_packed_chunk(store):
    data = os.urandom(1000)
    await store.put(cid(data), data)
    await store.delete(cid(data))
    await store.delete(cid(data))
    assert not await store.has(cid(data))
    with pytest.raises(ChunkNotFound):
        await store.get(cid(data))
    with pytest.raises(ChunkNotFound):
        await store.open(cid(data))
    await store.put(cid(data), data)  # and it can come back
    assert await store.get(cid(data)) == data


async def test_bytes_that_do_not_match_their_record_are_refused(store, root):
    data = os.urandom(5000)
    await store.put(cid(data), data)
    [pack] = packs(root)
    with open(pack, "r+b") as f:  # damage the record header in front of the chunk
        f.seek(len(MAGIC))
        f.write(b"\0" * 8)
    with pytest.raises(BackendUnavailable, match="other bytes"):
        await store.get(cid(data))


async def test_put_many_goes_to_disk_in_one_group(store, root, monkeypatch):
    syncs: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (syncs.append(fd), real(fd))[1])
    chunks = [os.urandom(n) for n in (10, 70_000, 3000, 0, 40_000)]
    await store.put_many([(cid(c), c) for c in chunks] + [(cid(chunks[1]), chunks[1])])
    assert len(syncs) == 1  # one writev and one fdatasync for the whole batch
    assert [bytes(g) for g in await store.get_many([cid(c) for c in chunks])] == chunks
    await store.put_many([(cid(c), c) for c in chunks])  # all stored already: no write
    await store.put_many([])
    assert len(syncs) == 1


async def test_puts_waiting_together_share_a_group_and_a_cancelled_one_is_stored_anyway(
    store, root, monkeypatch
):
    """While the writer is busy, puts queue up; the next group takes them all (each put
    returns once its own chunks are durable). A put whose request went away (its task
    cancelled) still has its chunks stored, and nothing is left unsettled."""
    release = threading.Event()
    groups: list[int] = []
    real = store._write_group

    def held(group):  # type: ignore[no-untyped-def]
        groups.append(sum(len(p.chunks) for p in group))
        release.wait(10)
        real(group)

    monkeypatch.setattr(store, "_write_group", held)
    first = os.urandom(1000)
    blocking = asyncio.ensure_future(store.put(cid(first), first))
    while not groups:  # the writer holds the first group
        await asyncio.sleep(0.01)
    batches = [[os.urandom(2000 + i) for i in range(3)], [os.urandom(7000)]]
    puts = [asyncio.ensure_future(store.put_many([(cid(c), c) for c in b])) for b in batches]
    gone = os.urandom(3000)
    cancelled = asyncio.ensure_future(store.put(cid(gone), gone))
    await asyncio.sleep(0.05)
    cancelled.cancel()
    release.set()
    await asyncio.gather(blocking, *puts)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert groups == [1, 5]  # the three waiting puts went to disk in one group
    for c in [first, gone, *batches[0], *batches[1]]:
        assert await store.get(cid(c)) == c


async def test_get_many_reads_runs_of_records_and_loose_chunks_in_order(store, root):
    together = [os.urandom(n) for n in (1, 3000, 70_000, 0, 12_345)]  # one group: adjacent
    await asyncio.gather(*(store.put(cid(c), c) for c in together))
    apart = os.urandom(5000)
    await store.put(cid(apart), apart)  # a later group, after the others in the pack
    loose = os.urandom(9000)
    await obstore.put_async(obstore.store.LocalStore(prefix=root), chunk_key(cid(loose)), loose)
    wanted = [apart, together[2], loose, together[0], together[4], together[2], together[3]]
    got = await store.get_many([cid(c) for c in wanted])
    assert [bytes(g) for g in got] == wanted
    assert await store.get_many([]) == []
    with pytest.raises(ChunkNotFound):
        await store.get_many([cid(apart), cid(b"never stored")])


async def test_get_many_refuses_a_run_with_a_damaged_record(store, root):
    first, second = os.urandom(4000), os.urandom(4000)
    await asyncio.gather(store.put(cid(first), first), store.put(cid(second), second))
    [pack] = packs(root)
    with open(pack, "r+b") as f:  # the second record's header, inside the run read
        f.seek(len(MAGIC) + HEADER.size + 4000)
        f.write(b"\0" * 8)
    with pytest.raises(BackendUnavailable, match="other bytes"):
        await store.get_many([cid(first), cid(second)])
    os.truncate(pack, len(MAGIC) + HEADER.size + 100)  # and a pack cut short
    with pytest.raises(BackendUnavailable, match="ends before"):
        await store.get_many([cid(first)])


async def test_a_failed_write_is_reported_and_later_writes_succeed(store, root):
    """A write the kernel refuses (here: the file size limit, as a full disk would)
    fails that put with a clear error, indexes nothing, and leaves earlier chunks."""
    before = os.urandom(4000)
    await store.put(cid(before), before)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    big = os.urandom(200_000)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (packs(root)[0].stat().st_size + 1000, hard))
        with pytest.raises(BackendUnavailable, match="pack write failed"):
            await store.put(cid(big), big)
        small, other = os.urandom(500), os.urandom(300_000)  # one group: it fails whole
        with pytest.raises(BackendUnavailable, match="pack write failed"):
            await store.put_many([(cid(small), small), (cid(other), other)])
        assert not await store.has(cid(small))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert not await store.has(cid(big))
    await store.put(cid(big), big)  # room again: a fresh pack takes it
    assert await store.get(cid(big)) == big
    assert await store.get(cid(before)) == before


def test_a_killed_process_keeps_every_chunk_whose_put_returned(root):
    """kill -9 mid-stream: every put that returned is readable afterwards; a torn tail
    is only dead space."""
    script = textwrap.dedent(
        f"""
        import asyncio, os, sys, blake3
        from pathlib import Path
        from syncd.server.blockstore_pack import PackBlockStore
        async def main():
            store = PackBlockStore(Path({str(root)!r}))
            while True:
                data = os.urandom(50_000)
                await store.put(blake3.blake3(data).hexdigest(), data)
                print(blake3.blake3(data).hexdigest(), flush=True)
        asyncio.run(main())
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acked = [proc.stdout.readline().strip() for _ in range(200)]
    proc.kill()
    proc.wait()
    with open(packs(root)[0], "ab") as f:  # as if the kill tore a record in half
        f.write(HEADER.pack(b"\1" * 32, 50_000) + b"torn")

    async def check() -> None:
        store = PackBlockStore(root)
        try:
            for chunk_id in acked:
                data = await store.get(chunk_id)
                assert blake3.blake3(data).hexdigest() == chunk_id
            fresh = os.urandom(100)
            await store.put(cid(fresh), fresh)
            assert await store.get(cid(fresh)) == fresh
        finally:
            store.close()

    asyncio.run(check())


async def test_a_closed_store_refuses_puts(root):
    store = PackBlockStore(root)
    store.close()
    with pytest.raises(BackendUnavailable, match="closed"):
        await store.put(cid(b"x"), b"x")
