"""`syncd server reshard --add` under syncing clients: a real server on a directory with
two PostgreSQL shards, real daemons writing files while a third shard is added; then
the devices converge, and the moved journal is complete and gap-free on its new shard
and gone from the old one."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from syncd.server.metastore.ring import HashRing, namespace_key
from tests.server.metastore.conftest import sharded_url
from tests.support import postgres
from tests.support.devices import DeviceProc, converge, wait_for
from tests.support.server import ServerProc

NAMES = ["live_dir", "live_shard0", "live_shard1", "live_shard2"]
TABLES = {"heads": "id", "journal": "ns", "current": "ns", "ops": "ns", "chunk_refs": "ns"}


@pytest.fixture
def databases():
    postgres.require()
    urls = [postgres.create(n) for n in NAMES]
    yield urls
    for n in NAMES:
        postgres.drop(n)


def drop_in(folder: Path, name: str, data: bytes) -> None:
    """A file appears whole (written beside the folder, renamed in)."""
    tmp = folder.parent / f".{name}.part"
    tmp.write_bytes(data)
    os.replace(tmp, folder / name)


def rows_of(url: str, ns: int) -> dict[str, int]:
    return {
        t: postgres.query(url, f"SELECT count(*) FROM {t} WHERE {c} = %s", (ns,))[0][0]
        for t, c in TABLES.items()
    }


def test_reshard_under_syncing_clients(databases, tmp_path):
    directory, shard0, shard1, new_shard = databases
    server = ServerProc(tmp_path / "data", meta_url=sharded_url(directory, [shard0, shard1]))
    server.start()
    devices: list[DeviceProc] = []
    try:
        # Namespaces are numbered from 1; the new shard will be "shard2" on the ring.
        grown = HashRing(["shard0", "shard1", "shard2"])
        moves = [grown.node_for(namespace_key(ns)) == "shard2" for ns in range(1, 50)]
        mover, stayer = moves.index(True) + 1, moves.index(False) + 1
        for i in range(1, max(mover, stayer) + 1):
            server.adduser(f"live{i}")
        a1, a2 = DeviceProc("a1", server), DeviceProc("a2", server)
        c1 = DeviceProc("c1", server)
        devices += [a1, a2, c1]
        for device, user in ((a1, mover), (a2, mover), (c1, stayer)):
            device.link(f"live{user}")
            device.start()

        # Steps 1-2 of a move by hand (mark it moving, freeze its head): its writes get
        # 503 + Retry-After; the daemon waits and retries, and the file lands after.
        mark = "UPDATE namespaces SET moving = %s WHERE id = %s RETURNING shard"
        ((home,),) = postgres.query(directory, mark, (1.0, mover))
        home_url = (shard0, shard1)[home]
        freeze = "UPDATE heads SET frozen = %s WHERE id = %s RETURNING id"
        assert postgres.query(home_url, freeze, (True, mover)) == [(mover,)]
        drop_in(a1.folder, "during-mark.txt", b"waited for the move")

        def refused() -> bool:
            log = server.log_path.read_text()
            return any(f"/v1/ns/{mover}/" in line and '" 503' in line for line in log.splitlines())

        wait_for(refused, "a write refused with 503 while the namespace is moving")
        postgres.query(home_url, freeze, (False, mover))
        postgres.query(directory, mark, (None, mover))
        converge(a1, a2)

        # Now a real reshard while both users keep writing.
        stop = threading.Event()
        written: dict[str, list[str]] = {"a1": [], "c1": []}

        def writer() -> None:
            i = 0
            while not stop.is_set() or i < 20:
                for device in (a1, c1):
                    name = f"{device.name}-{i:03d}.txt"
                    drop_in(device.folder, name, f"{name} written during the reshard".encode())
                    written[device.name].append(name)
                i += 1
                stop.wait(0.1)

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            out = subprocess.run(
                [sys.executable, "-m", "syncd", "server", "reshard"]  # noqa: RUF005
                + ["--meta", server.meta_url, "--add", new_shard],
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            stop.set()
            thread.join()
        assert out.returncode == 0, out.stderr
        assert "3 shards; moved" in out.stdout and f"namespace {mover}:" in out.stderr

        tree = converge(a1, a2)
        assert set(written["a1"]) | {"during-mark.txt"} <= set(tree)
        assert all(tree[n][1] == f"{n} written during the reshard".encode() for n in written["a1"])
        wait_for(lambda: c1.idle(), "c1 up to date")
        assert set(written["c1"]) <= set(c1.tree())

        # The mover's journal is on the new shard only, complete and gap-free.
        placed = "SELECT id, shard, moving FROM namespaces WHERE id IN (%s, %s) ORDER BY id"
        placements = dict(
            (ns, (shard, moving))
            for ns, shard, moving in postgres.query(directory, placed, (mover, stayer))
        )
        assert placements[mover] == (2, None)
        stayer_shard = shard0 if placements[stayer][0] == 0 else shard1
        seqs = [
            r[0]
            for r in postgres.query(
                new_shard, "SELECT seq FROM journal WHERE ns = %s ORDER BY seq", (mover,)
            )
        ]
        (head,) = postgres.query(new_shard, "SELECT seq FROM heads WHERE id = %s", (mover,))[0]
        assert seqs == list(range(1, head + 1))
        paths = [
            r[0]
            for r in postgres.query(new_shard, "SELECT path FROM journal WHERE ns = %s", (mover,))
        ]
        assert sorted(paths) == sorted(set(paths))  # each file committed once, none twice
        assert set(written["a1"]) <= set(paths)
        for url in (shard0, shard1):
            assert set(rows_of(url, mover).values()) == {0}
        assert rows_of(stayer_shard, stayer)["journal"] >= len(written["c1"])
        assert " 500 " not in server.log_path.read_text()
    finally:
        for device in devices:
            device.cleanup()
        server.stop()
