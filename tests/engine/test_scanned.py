"""Small files go up from the bytes the scan read (`ScannedContent`), not read again."""

from __future__ import annotations

import os
from pathlib import Path

from syncd.engine.scanned import ScannedContent, slices
from syncd.indexer.state import Block
from syncd.transport.client import ServerClient
from tests.support.loops import sync_loop
from tests.support.server import ServerProc


def _blocks(*sizes: int, tag: str = "a") -> tuple[Block, ...]:
    return tuple(Block(f"{tag}{i}".ljust(64, "0"), n) for i, n in enumerate(sizes))


def test_contents_are_found_by_the_block_list_they_were_hashed_into():
    kept = ScannedContent(limit=100, file_limit=60)
    one, two = _blocks(3, 2), _blocks(5, tag="b")
    kept.keep(one, b"abcde")
    kept.keep(two, b"fghij")
    assert (len(kept), kept.size) == (2, 10)
    assert kept.take(_blocks(3, 2, tag="c")) is None  # other ids: not this content
    assert kept.take(_blocks(2, 3)) is None  # same ids, other cut: not this content
    assert kept.take(one) == b"abcde"
    assert kept.take(one) is None  # taken once
    assert kept.size == 5
    kept.clear()
    assert (len(kept), kept.size, kept.take(two)) == (0, 0, None)


def test_what_is_kept_is_bounded():
    kept = ScannedContent(limit=10, file_limit=6)
    assert kept.room() == 6
    kept.keep(_blocks(7, tag="a"), b"x" * 7)  # bigger than a file may be
    kept.keep(_blocks(3, tag="b"), b"x" * 4)  # sizes do not add up: never kept
    kept.keep((), b"")
    assert len(kept) == 0
    kept.keep(_blocks(6, tag="c"), b"x" * 6)
    assert kept.room() == 4
    kept.keep(_blocks(5, tag="d"), b"x" * 5)  # no room left for it
    kept.keep(_blocks(4, tag="e"), b"x" * 4)
    assert (len(kept), kept.size, kept.room()) == (2, 10, 0)


def test_slices_share_the_bytes():
    data = b"0123456789"
    blocks = _blocks(4, 6)
    got = list(slices(data, [(0, blocks[0]), (4, blocks[1])]))
    assert [(i, bytes(v)) for i, v in got] == [(blocks[0].id, b"0123"), (blocks[1].id, b"456789")]
    assert all(isinstance(v, memoryview) for _, v in got)


def _versions(client: ServerClient, ns: int, path: str) -> list[bytes | None]:
    """Every version of `path` on the server, oldest first (None: a deletion)."""
    out: list[bytes | None] = []
    for entry in reversed(client.history(ns, path)):
        if entry.get("deleted"):
            out.append(None)
        else:
            out.append(b"".join(client.get_chunk(ns, b["id"]) for b in entry["blocks"]))
    return out


def test_a_small_file_goes_up_as_scanned_even_if_it_is_gone_before_the_upload(
    server: ServerProc, new_user, tmp_path: Path
):
    """The upload sends the version the scan read, without reading the file again; a
    file bigger than is kept is read again, and its change caught as before."""
    session = new_user("a")
    client = ServerClient(server.url, session.token)
    root = tmp_path / "a"
    loop = sync_loop(root, client, session, device="a")
    loop.scanned.file_limit = 64 << 10
    try:
        loop.tick()  # the first, full pass over an empty folder
        small, big, newer = (os.urandom(n << 10) for n in (40, 200, 200))
        (root / "small.bin").write_bytes(small)
        (root / "big.bin").write_bytes(big)
        run = loop.executor.run

        def run_after_changes(ops):  # between the scan and the first upload
            if (root / "small.bin").exists():
                (root / "small.bin").unlink()
                (root / "big.bin").write_bytes(newer)
            return run(ops)

        loop.executor.run = run_after_changes  # type: ignore[method-assign]
        loop.post("dirty", {"small.bin", "big.bin"})
        loop.tick()
        loop.executor.run = run  # type: ignore[method-assign]
        assert _versions(client, session.ns, "small.bin") == [small]  # as it was scanned
        assert _versions(client, session.ns, "big.bin") == [newer]  # read again: the newer
        assert len(loop.scanned) == 0  # nothing kept past the cycle
        loop.post("dirty", {"small.bin"})
        loop.tick()
        assert _versions(client, session.ns, "small.bin") == [small, None]  # then removed
    finally:
        client.close()
