"""Notifications/s through NATS as the server sends them: one connection publishes
`PREFIX.ns.<n>` messages (payload: a sequence number), another receives them on the
wildcard subscription every server process holds. Bounded by count and time."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time

import nats


async def _measure(url: str, count: int, namespaces: int) -> dict:
    prefix = f"bench{secrets.token_hex(4)}"
    sub_conn = await nats.connect(url, name="bench-sub")
    pub_conn = await nats.connect(url, name="bench-pub")
    got = 0
    done = asyncio.Event()

    async def on_message(_msg: object) -> None:
        nonlocal got
        got += 1
        if got >= count:
            done.set()

    await sub_conn.subscribe(f"{prefix}.ns.*", cb=on_message, pending_msgs_limit=count)
    await sub_conn.flush()
    started = time.perf_counter()
    for i in range(count):
        await pub_conn.publish(f"{prefix}.ns.{i % namespaces}", str(i).encode())
    await pub_conn.flush()
    published = time.perf_counter() - started
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), 60)
    received = time.perf_counter() - started
    await pub_conn.close()
    await sub_conn.close()
    return {
        "messages": count,
        "received": got,
        "publish_per_s": round(count / published),
        "delivered_per_s": round(got / received),
    }


def nats_throughput(url: str = "nats://127.0.0.1:4222", count: int = 100_000) -> dict:
    result = asyncio.run(_measure(url, count, namespaces=10_000))
    print(f"  NATS: {result}", flush=True)
    return result
