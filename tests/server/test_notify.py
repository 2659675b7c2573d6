"""One notifier suite for the in-process and the NATS notifier (real NATS on 127.0.0.1)."""

from __future__ import annotations

import asyncio

import pytest

from syncd.server.errors import BackendUnavailable
from syncd.server.notify import open_notifier
from syncd.server.notify_nats import NatsNotifier, open_nats

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(params=["memory", "nats"])
def url(request) -> str:
    return "memory://" if request.param == "memory" else request.getfixturevalue("nats_url")


@pytest.fixture
async def notifier(url):
    n = open_notifier(url)
    await n.start()
    yield n
    await n.close()


async def test_subscribe_before_publish_wakes(notifier):
    sub = notifier.subscribe(7)
    assert notifier.waiters() == 1
    await notifier.publish(7, 1)
    assert await sub.wait(5) is True
    sub.close()
    assert notifier.waiters() == 0


async def test_other_namespaces_do_not_wake(notifier):
    sub = notifier.subscribe(7)
    await notifier.publish(8, 1)
    assert await sub.wait(0.2) is False
    sub.close()


async def test_timeout_without_publish(notifier):
    sub = notifier.subscribe(1)
    assert await sub.wait(0.05) is False
    sub.close()


async def test_close_wakes_every_waiter(url):
    n = open_notifier(url)
    await n.start()
    subs = [n.subscribe(i) for i in range(3)]
    waiting = [asyncio.ensure_future(s.wait(30)) for s in subs]
    await asyncio.sleep(0)
    await n.close()
    assert await asyncio.gather(*waiting) == [True, True, True]


async def test_check_answers(notifier):
    assert isinstance(await notifier.check(), dict)


# -- NATS only: several processes' notifiers on one broker -------------------------------


async def test_nats_publish_wakes_another_notifier_not_other_prefixes(nats_url):
    a, b, stranger = open_nats(nats_url), open_nats(nats_url), open_nats(nats_url + "x")
    for n in (a, b, stranger):
        await n.start()
    try:
        on_b, on_stranger = b.subscribe(42), stranger.subscribe(42)
        await a.publish(42, 5)
        assert await on_b.wait(5) is True
        assert b.received == 1 and a.published == 1
        assert await on_stranger.wait(0.3) is False  # another deployment's prefix
    finally:
        for n in (a, b, stranger):
            await n.close()


async def test_nats_down_at_start_then_connects_and_wakes_everyone(private_nats):
    from deploy.services import free_port

    private_nats.port = free_port()  # nothing listens there yet
    n = NatsNotifier([private_nats.url], "t", reconnect_wait=0.1, start_wait=0.2)
    await n.start()  # returns: NATS being down does not stop a server from starting
    try:
        with pytest.raises(BackendUnavailable):
            await n.check()
        sub = n.subscribe(1)
        await n.publish(1, 1)  # still wakes its own process; the broker's copy is dropped
        assert await sub.wait(1) is True
        assert n.dropped == 1
        sub.close()

        waiting = n.subscribe(2)  # a long-poll held through the outage
        await asyncio.to_thread(private_nats.start)
        assert await waiting.wait(30) is True  # woken to re-read its journal
        await n.check()
        other = open_nats(private_nats.url + "?subject=t")
        await other.start()
        sub = n.subscribe(3)
        await other.publish(3, 1)
        assert await sub.wait(5) is True
        await other.close()
    finally:
        await n.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nats://", "expected nats://HOST:PORT"),
        ("nats://h:1?subject=a..b", "dot-separated"),
        ("nats://h:1?subject=a*", "dot-separated"),
        ("nats://h:1?colour=red", "unknown parameter"),
        ("nats://h:1?reconnect_wait=soon", "seconds"),
        ("kafka://h:1", "unsupported notifier URL"),
    ],
)
def test_bad_urls_are_clear_errors(url, message):
    with pytest.raises(ValueError, match=message):
        open_notifier(url)


def test_url_parts():
    n = open_nats("nats://u:p@a:1,b:2?subject=prod.eu&reconnect_wait=0.5")
    assert n.servers == ["nats://u:p@a:1", "nats://b:2"]
    assert str(n) == "a:1,b:2"  # never the password in logs
    assert n.subject(3) == "prod.eu.ns.3" and n.reconnect_wait == 0.5
    assert open_nats("nats://a:1").prefix == "syncd"
