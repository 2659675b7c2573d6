"""Small files come down in batches; the next batch's chunks are fetched while the
current one is written to disk."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from syncd.chunker import ChunkParams, chunk_file
from syncd.engine import executor as executor_mod
from syncd.engine.executor import Executor, _download_batches
from syncd.engine.localfs import LocalFS
from syncd.engine.ops import Download, Upload
from syncd.indexer.db import Index
from syncd.indexer.state import Block, FileState
from syncd.transport.client import ServerClient
from tests.support.server import ServerProc

KIB = 1 << 10


def _down(path: str, size: int) -> Download:
    return Download(path, FileState(path, "file", size, blocks=(Block("a" * 64, size),)), None)


def test_runs_of_small_downloads_are_cut_into_batches_in_order(monkeypatch):
    monkeypatch.setattr(executor_mod, "DOWNLOAD_BATCH_BYTES", 100)
    big = _down("big", executor_mod.SMALL_FILE + 1)
    folder = Download("d", FileState("d", "folder"), None)
    a, b, c, d = (_down(n, 60) for n in "abcd")
    steps = _download_batches([a, b, c, folder, d, big])
    assert steps == [[a, b], [c], folder, [d], big]
    assert _download_batches([]) == []


class Spy(ServerClient):
    """The real client; it notes which thread asked for chunks."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fetched_on: list[str] = []

    def get_chunks(self, ns, ids, sizes):  # type: ignore[no-untyped-def]
        if ids:
            self.fetched_on.append(threading.current_thread().name)
        return super().get_chunks(ns, ids, sizes)


def test_batches_are_fetched_ahead_and_every_file_arrives_intact(
    server: ServerProc, new_user, tmp_path: Path, monkeypatch
):
    session, files, remote = _shared(server, new_user, tmp_path, monkeypatch, 12)

    b, client, dst = _receiver(server, session, tmp_path)
    try:
        out = b.run([Download(name, state, None) for name, state in remote.items()])
    finally:
        client.close()
    assert out.applied == len(files) and not out.problems
    assert {p.name: p.read_bytes() for p in dst.iterdir() if p.is_file()} == files
    # three batches of four files: the first fetched as it is written, two ahead
    assert client.fetched_on.count("MainThread") == 1
    ahead = [name for name in client.fetched_on if name != "MainThread"]
    assert len(ahead) == 2 and all(name.startswith("syncd-fetch") for name in ahead)


def _shared(server: ServerProc, new_user, tmp_path: Path, monkeypatch, count: int):
    """Batches of 64 KiB, and `count` files of ~20 KiB committed by a first device:
    its session, the files and their remote states."""
    monkeypatch.setattr(executor_mod, "DOWNLOAD_BATCH_BYTES", 64 * KIB)
    session = new_user("laptop")
    session.client.close()
    files = {f"f{i:02}.bin": os.urandom(20 * KIB + i) for i in range(count)}
    return session, files, _uploaded(server, session, tmp_path, files)


def _receiver(server: ServerProc, session, tmp_path: Path) -> tuple[Executor, Spy, Path]:
    """Device B's executor, its spied-on client and its folder."""
    dst = tmp_path / "b"
    (dst / ".syncd").mkdir(parents=True)
    client = Spy(server.url, session.token)
    index = Index.open(tmp_path / "b.sqlite3")
    return Executor(index, LocalFS(dst, dst / ".syncd"), client, session.ns, "desktop"), client, dst


def _uploaded(server: ServerProc, session, tmp_path: Path, files: dict[str, bytes]) -> dict:
    """`files` committed from a device of `session`'s user: their remote states."""
    params = ChunkParams.from_dict(session.chunking)
    src = tmp_path / "a"
    (src / ".syncd").mkdir(parents=True)
    uploads = []
    for name, data in files.items():
        (src / name).write_bytes(data)
        blocks = tuple(Block(r.id, r.length) for r in chunk_file(src / name, params))
        st = os.stat(src / name)
        uploads.append(
            Upload(name, FileState(name, "file", len(data), 0o644, st.st_mtime_ns, blocks), None)
        )
    a_index = Index.open(tmp_path / "a.sqlite3")
    a_client = ServerClient(server.url, session.token)
    a = Executor(a_index, LocalFS(src, src / ".syncd"), a_client, session.ns, "laptop")
    try:
        assert a.run(uploads).committed == len(files)
    finally:
        a_client.close()
    return {name: a_index.get("base", name) for name in files}


def test_the_last_batch_of_a_round_fetches_the_next_rounds_first_batch_ahead(
    server: ServerProc, new_user, tmp_path: Path, monkeypatch
):
    session, files, remote = _shared(server, new_user, tmp_path, monkeypatch, 8)
    names = sorted(files)
    first, second = names[:4], names[4:]

    b, client, dst = _receiver(server, session, tmp_path)
    asked: list[int] = []

    def lookahead() -> list[FileState]:  # what the journal holds past the last pull
        asked.append(len(client.fetched_on))
        return [remote[n] for n in second]

    b.lookahead = lookahead
    try:
        one = b.run([Download(n, remote[n], None) for n in first])
        fetched_in_one = list(client.fetched_on)
        b.lookahead = None
        two = b.run([Download(n, remote[n], None) for n in second])
    finally:
        client.close()
    assert one.applied == two.applied == 4 and not one.problems and not two.problems
    assert {p.name: p.read_bytes() for p in dst.iterdir() if p.is_file()} == files
    # asked once the round's own chunks were in; the next round fetched nothing itself
    assert asked == [1] and fetched_in_one[0] == "MainThread"
    assert fetched_in_one[1].startswith("syncd-fetch") and client.fetched_on == fetched_in_one


def test_a_wrong_guess_ahead_costs_nothing_but_the_fetch(
    server: ServerProc, new_user, tmp_path: Path, monkeypatch
):
    monkeypatch.setattr(executor_mod, "DOWNLOAD_BATCH_BYTES", 64 * KIB)
    session = new_user("laptop")
    session.client.close()
    files = {f"g{i}.bin": os.urandom(10 * KIB + i) for i in range(4)}
    remote = _uploaded(server, session, tmp_path, files)
    unknown = FileState("ghost", "file", 5, blocks=(Block("0" * 64, 5),))  # not on the server

    b, client, dst = _receiver(server, session, tmp_path)
    b.lookahead = lambda: [unknown, FileState("big", "file", executor_mod.SMALL_FILE + 1)]
    try:
        one = b.run([Download("g0.bin", remote["g0.bin"], None)])
        b.lookahead = None
        rest = [Download(n, remote[n], None) for n in sorted(files)[1:]]
        two = b.run(rest)  # the ahead fetch failed (404): this round fetches for itself
    finally:
        client.close()
    assert one.applied == 1 and two.applied == 3 and not two.problems
    assert {p.name: p.read_bytes() for p in dst.iterdir() if p.is_file()} == files
    assert client.fetched_on == ["MainThread", "syncd-fetch_0", "MainThread"]
