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
    monkeypatch.setattr(executor_mod, "DOWNLOAD_BATCH_BYTES", 64 * KIB)
    session = new_user("laptop")
    session.client.close()
    params = ChunkParams.from_dict(session.chunking)
    src = tmp_path / "a"
    (src / ".syncd").mkdir(parents=True)
    files = {f"f{i:02}.bin": os.urandom(20 * KIB + i) for i in range(12)}
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
    remote = {name: a_index.get("base", name) for name in files}

    dst = tmp_path / "b"
    (dst / ".syncd").mkdir(parents=True)
    client = Spy(server.url, session.token)
    b_index = Index.open(tmp_path / "b.sqlite3")
    b = Executor(b_index, LocalFS(dst, dst / ".syncd"), client, session.ns, "desktop")
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
