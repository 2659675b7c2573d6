"""End to end through the scaled stack (deploy.stack, the same module `make stack` runs):
haproxy, two server processes, two PostgreSQL shards + directory, S3 on moto, NATS."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import pytest

from deploy.services import Moto
from deploy.stack import Stack
from tests.support import postgres
from tests.support.backends import nats_reachable
from tests.support.devices import DeviceProc, converge, wait_for

PASSWORD = "correct horse"


@dataclass
class Endpoint:
    """Where a device links to: one server process directly, or haproxy."""

    url: str
    ca: str | None = None


def _why_not() -> str | None:
    if shutil.which("haproxy") is None:
        return "haproxy not installed (Debian package haproxy)"
    if not nats_reachable():
        return "no NATS at 127.0.0.1:4222"
    return Moto.available() or postgres.unavailable()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    why = _why_not()
    if why:
        pytest.skip(why)
    s = Stack(tmp_path_factory.mktemp("stack"), servers=2, shards=2)
    s.db_prefix = f"{postgres.PREFIX}stack_"
    s.start()
    yield s
    s.stop()


def requests_on(stack: Stack, i: int, marker: str) -> int:
    """How many requests whose line contains `marker` server i has logged."""
    log = stack.procs[i].log_path
    return sum(1 for line in log.read_text(errors="replace").splitlines() if marker in line)


def test_two_daemons_on_different_server_processes_stay_in_sync(stack, tmp_path):
    stack.adduser("direct", PASSWORD)
    a = DeviceProc("a", Endpoint(stack.server_url(0)), base=tmp_path / "a")
    b = DeviceProc("b", Endpoint(stack.server_url(1)), base=tmp_path / "b")
    try:
        for dev in (a, b):
            dev.link("direct")
            dev.start()
        (a.folder / "from-a.txt").write_text("written on a device of server 0\n")
        converge(a, b)
        (b.folder / "docs").mkdir()
        (b.folder / "docs" / "from-b.bin").write_bytes(os.urandom(300_000))
        converge(a, b)
        (a.folder / "from-a.txt").write_text("edited on a\n")
        tree = converge(a, b)
        assert tree["from-a.txt"][1] == b"edited on a\n"
        assert set(tree) == {"from-a.txt", "docs", "docs/from-b.bin"}
        for i in (0, 1):  # each device really went to its own process
            assert requests_on(stack, i, "/changes?") > 0
    finally:
        a.cleanup()
        b.cleanup()


def test_kill_a_server_mid_sync_and_the_daemons_carry_on_through_the_other(stack, tmp_path):
    stack.adduser("balanced", PASSWORD)
    a = DeviceProc("a", Endpoint(stack.url), base=tmp_path / "a")
    b = DeviceProc("b", Endpoint(stack.url), base=tmp_path / "b")
    try:
        for dev in (a, b):
            dev.link("balanced")
            dev.start()
        files = {f"set/file{i:02}.bin": os.urandom(400_000) for i in range(12)}
        files["set/big.bin"] = os.urandom(3 << 20)  # ~7.7 MiB in all
        total = sum(len(d) for d in files.values())
        (a.folder / "set").mkdir()
        for rel, data in files.items():
            (a.folder / rel).write_bytes(data)

        def started() -> bool:
            st = a.status()
            return st["bytes_up"] > 0 or st["uploaded_bytes_total"] > 0

        wait_for(started, "device a to start uploading through haproxy", timeout=60)
        open_now = stack.sessions()  # requests in flight (uploads, held long-polls) per server
        victim = open_now.index(max(open_now))
        stack.kill_server(victim)  # kill -9, mid-sync, with requests of ours open on it
        assert open_now[victim] > 0
        at_kill = b.status()
        assert at_kill["downloaded_bytes_total"] < total, "the sync was over before the kill"
        survivor = 1 - victim
        served_before = requests_on(stack, survivor, "/v1/ns/")

        tree = converge(a, b, timeout=180)
        assert {p: t[1] for p, t in tree.items() if t[0] == "file"} == files  # byte-identical
        assert requests_on(stack, survivor, "/v1/ns/") > served_before  # it carried on there
        (b.folder / "set" / "after.txt").write_text("only one server left\n")
        tree = converge(a, b)
        assert tree["set/after.txt"][1] == b"only one server left\n"
    finally:
        a.cleanup()
        b.cleanup()
