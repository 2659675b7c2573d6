"""Small files come down in batches; the next batch's chunks are fetched while the
current one is written to disk."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from syncd.chunker import ChunkParams, chunk_file
from syncd.engine import executor as executor_mod
from syncd.engine.executor import Executor, _download_batches
from syncd.engine.localfs import LocalFS
from syncd.engine.ops import Download, Upload
from syncd.errors import Offline
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
    out = _receive_all(b, client, remote)
    assert out.applied == len(files) and not out.problems
    assert _landed(dst) == files
    # three batches of four files: the first fetched as it is written, two ahead
    assert client.fetched_on.count("MainThread") == 1
    ahead = [name for name in client.fetched_on if name != "MainThread"]
    assert len(ahead) == 2 and all(name.startswith("syncd-fetch") for name in ahead)


def _receive_all(b: Executor, client: ServerClient, remote: dict):
    """Run the download of every file in `remote` on `b`; its outcome."""
    try:
        return b.run([Download(name, state, None) for name, state in remote.items()])
    finally:
        client.close()


def _landed(dst: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in dst.iterdir() if p.is_file()}


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


class Traced(LocalFS):
    """The real folder; it notes when each batch is staged, flushed and placed, and
    holds each flush until the next batch has been staged (as a slow disk would)."""

    def __init__(
        self, root: Path, state_dir: Path, batches: int, fail_flush: int | None = None
    ) -> None:
        super().__init__(root, state_dir)
        self.events: list[tuple[str, str]] = []
        self.batches = batches
        self.fail_flush = fail_flush
        self.flushes = 0
        self.staged_since_flush = threading.Event()

    def stage_file(self, path, state, chunks, *, durable, verified=False):  # type: ignore[no-untyped-def]
        self.events.append(("stage", path))
        self.staged_since_flush.set()
        return super().stage_file(path, state, chunks, durable=durable, verified=verified)

    def sync_staged(self, staged) -> None:  # type: ignore[no-untyped-def]
        names = list(staged)
        self.flushes += 1
        n = self.flushes
        self.staged_since_flush.clear()
        self.events.append(("flush-start", str(n)))
        if n < self.batches:  # the next batch starts staging meanwhile
            assert self.staged_since_flush.wait(60), "the next batch waited for this flush"
        if n == self.fail_flush:
            raise OSError(5, "Input/output error")
        super().sync_staged(names)
        self.events.append(("flush-done", str(n)))

    def place_file(self, path, state, tmp_name, expect, *, sync_dir=True):  # type: ignore[no-untyped-def]
        self.events.append(("place", path))
        return super().place_file(path, state, tmp_name, expect, sync_dir=sync_dir)


def _traced_receiver(
    server: ServerProc, session, tmp_path: Path, batches: int, fail_flush: int | None = None
):
    b, client, dst = _receiver(server, session, tmp_path)
    b.fs = Traced(dst, dst / ".syncd", batches, fail_flush)
    return b, client, dst


def test_a_batch_is_flushed_while_the_next_is_staged_and_placed_only_once_flushed(
    server: ServerProc, new_user, tmp_path: Path, monkeypatch
):
    session, files, remote = _shared(server, new_user, tmp_path, monkeypatch, 12)
    b, client, dst = _traced_receiver(server, session, tmp_path, 3)
    out = _receive_all(b, client, remote)
    assert out.applied == len(files) and not out.problems
    assert _landed(dst) == files
    assert os.listdir(dst / ".syncd" / "tmp") == []
    events = b.fs.events  # type: ignore[attr-defined]
    batches = [sorted(files)[i : i + 4] for i in (0, 4, 8)]
    for n, batch in enumerate(batches, start=1):
        done = events.index(("flush-done", str(n)))
        # D7: no file of a batch is renamed into place before its flush is done
        assert all(events.index(("place", p)) > done for p in batch)
        # and every file of it was staged before its flush began
        assert all(
            events.index(("stage", p)) < events.index(("flush-start", str(n))) for p in batch
        )
    # the first batch's flush overlapped the staging of the second
    second_staged = events.index(("stage", batches[1][0]))
    assert events.index(("flush-start", "1")) < second_staged < events.index(("flush-done", "1"))
    # the index records every file placed, as written
    assert {p: b.index.get("local", p).size for p in files} == {p: len(d) for p, d in files.items()}


def test_a_failed_flush_places_nothing_of_its_batch_and_the_others_still_land(
    server: ServerProc, new_user, tmp_path: Path, monkeypatch
):
    session, files, remote = _shared(server, new_user, tmp_path, monkeypatch, 12)
    b, client, dst = _traced_receiver(server, session, tmp_path, 3, fail_flush=2)
    out = _receive_all(b, client, remote)
    names = sorted(files)
    lost = set(names[4:8])
    assert set(out.problems) == lost and lost <= out.rescan
    assert all("could not flush the download to disk" in r for r in out.problems.values())
    assert _landed(dst) == {n: files[n] for n in names if n not in lost}
    assert os.listdir(dst / ".syncd" / "tmp") == []  # the unflushed temp files are gone
    assert all(b.index.get("local", n) is None for n in lost)


def test_a_staged_batch_is_placed_even_when_a_later_step_of_the_round_fails(
    server: ServerProc, new_user, tmp_path: Path, monkeypatch
):
    session, files, remote = _shared(server, new_user, tmp_path, monkeypatch, 8)
    b, client, dst = _traced_receiver(server, session, tmp_path, 1)  # the second never stages
    names = sorted(files)
    real = b.client.get_chunks
    calls = []

    def offline_on_the_second_batch(ns, ids, sizes):  # type: ignore[no-untyped-def]
        calls.append(ids)
        if len(calls) == 2:
            raise Offline("server went away")
        return real(ns, ids, sizes)

    monkeypatch.setattr(b.client, "get_chunks", offline_on_the_second_batch)
    monkeypatch.setattr(b, "_prefetch", lambda ops: None)  # fetch each batch when written
    try:
        with pytest.raises(Offline, match="server went away"):
            b.run([Download(name, remote[name], None) for name in names])
    finally:
        client.close()
    assert _landed(dst) == {n: files[n] for n in names[:4]}  # the first batch, staged, landed
    assert os.listdir(dst / ".syncd" / "tmp") == []
    assert all(b.index.get("local", n) is not None for n in names[:4])
