"""Faults between a daemon and the server (tests/support/faultproxy.py): the daemon
retries, reports offline while the network is gone, and stays consistent."""

from __future__ import annotations

import itertools
import os
import time

import httpx
import pytest

from tests.support.devices import DeviceProc, converge, wait_for, write
from tests.support.faultproxy import FaultProxy

_users = itertools.count()


@pytest.fixture
def proxy(server):
    p = FaultProxy(("127.0.0.1", server.port)).start()
    yield p
    p.stop()


def _get(proxy: FaultProxy, path: str = "/openapi.json", timeout: float = 10) -> httpx.Response:
    with httpx.Client(timeout=timeout) as c:
        return c.get(proxy.url + path)


def test_each_mode_does_what_it_says(proxy):
    body = _get(proxy).content
    assert len(body) > 4000
    proxy.set("drop")
    with pytest.raises(httpx.TransportError):
        _get(proxy)
    proxy.set("reset", after=2000)
    with pytest.raises(httpx.TransportError):  # reset 2 KB into the reply
        _get(proxy)
    proxy.set("truncate", after=2000)
    with pytest.raises(httpx.TransportError):  # a short body: fewer bytes than announced
        _get(proxy)
    proxy.set("reset", after=100, direction="up")
    with pytest.raises(httpx.TransportError):  # reset in the middle of an upload
        httpx.post(proxy.url + "/v1/login", content=b"x" * 100_000, timeout=10)
    proxy.set("delay", delay=0.05)
    assert _get(proxy).content == body
    proxy.set("stall")
    with pytest.raises(httpx.TimeoutException):
        _get(proxy, timeout=0.5)
    proxy.set("reset", after=0, count=1)  # one fault, then the proxy passes again
    with pytest.raises(httpx.TransportError):
        _get(proxy)
    assert _get(proxy).content == body
    proxy.heal()
    assert _get(proxy).content == body
    faults = {k: v for k, v in proxy.stats.items() if k.startswith("fault_")}
    assert faults == {"fault_drop": 1, "fault_reset": 3, "fault_truncate": 1}


@pytest.fixture
def trio(server, proxy):
    """alpha talks to the server through the proxy; beta directly."""
    user = f"faults{next(_users)}"
    server.adduser(user)
    a = DeviceProc("alpha", server, via=proxy.url)
    b = DeviceProc("beta", server)
    for d in (a, b):
        d.link(user)
        d.start()
    yield a, b, proxy
    for d in (a, b):
        d.cleanup()


def test_offline_while_the_network_is_gone_then_everything_arrives(trio):
    a, b, proxy = trio
    write(a.folder / "shared.txt", "v1")
    converge(a, b)
    proxy.set("drop")
    write(a.folder / "from-a.txt", "written on a while cut off")
    write(b.folder / "from-b.txt", "written on b meanwhile")
    write(b.folder / "shared.txt", "v2 from b")
    wait_for(lambda: a.status()["state"] == "offline", "alpha reports offline")
    st = a.status()
    assert st["offline_since"] is not None and st["next_retry"] is not None
    time.sleep(1)  # it keeps retrying and stays offline while the fault lasts
    assert a.status()["state"] == "offline"
    assert a.daemon_alive()
    proxy.heal()
    tree = converge(a, b, timeout=120)
    assert tree["from-a.txt"][1] == b"written on a while cut off"
    assert tree["from-b.txt"][1] == b"written on b meanwhile"
    assert tree["shared.txt"][1] == b"v2 from b"
    assert a.status()["offline_since"] is None
    assert proxy.stats["fault_drop"] > 0


@pytest.mark.parametrize("mode", ["reset", "truncate"])
def test_transfers_cut_mid_body_are_retried_and_never_corrupt(trio, mode):
    a, b, proxy = trio
    up = os.urandom(3 << 20)
    down = os.urandom(3 << 20)
    # uploads from alpha cut in the middle of request bodies, downloads in the middle
    # of replies: five times each, at different offsets
    proxy.set(mode, after=700_000, direction="up", count=5)
    write(a.folder / "up.bin", up)
    wait_for(lambda: proxy.stats[f"fault_{mode}"] >= 5, "the upload faults to fire", 120)
    proxy.set(mode, after=300_000, direction="down", count=5)
    write(b.folder / "down.bin", down)
    tree = converge(a, b, timeout=180)
    assert tree["up.bin"][1] == up and tree["down.bin"][1] == down
    assert proxy.stats[f"fault_{mode}"] >= 6
    # one revision each on the server: a cut transfer never became a commit
    assert len(a.control("history", path="up.bin")["entries"]) == 1
    assert len(a.control("history", path="down.bin")["entries"]) == 1
    tmp = a.folder / ".syncd" / "tmp"
    assert not tmp.exists() or os.listdir(tmp) == []


def test_a_stall_shorter_than_the_timeout_is_only_latency(trio):
    a, b, proxy = trio
    write(a.folder / "before.txt", "1")
    converge(a, b)
    proxy.set("stall")
    write(a.folder / "during.txt", "written during the stall")
    wait_for(lambda: proxy.stats["stalled_reads"] > 0, "alpha's requests to stall")
    time.sleep(2)
    proxy.heal()
    tree = converge(a, b, timeout=120)
    assert tree["during.txt"][1] == b"written during the stall"
    assert len(a.control("history", path="during.txt")["entries"]) == 1


@pytest.mark.slow
def test_a_stall_longer_than_the_timeout_turns_offline_then_recovers(trio):
    a, b, proxy = trio
    converge(a, b)
    proxy.set("stall")
    write(a.folder / "during.txt", "written during a long stall")
    wait_for(lambda: a.status()["state"] == "offline", "alpha gives up on the stall", 180)
    proxy.heal()
    tree = converge(a, b, timeout=180)
    assert tree["during.txt"][1] == b"written during a long stall"
