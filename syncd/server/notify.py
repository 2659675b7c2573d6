"""Change notifications: hints that a namespace's journal has grown (D4).

A long-poll subscribes *before* it reads the journal, so a commit that lands in between
still wakes it. A lost notification only delays: the journal is the truth. Chosen by
URL: `memory://` (the embedded default, one process) or `nats://HOST:PORT?subject=PREFIX`
(several processes behind a load balancer; `notify_nats`).
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class Subscription(Protocol):
    async def wait(self, timeout: float) -> bool: ...
    def close(self) -> None: ...


class Notifier(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    def subscribe(self, ns: int) -> Subscription: ...
    async def publish(self, ns: int, seq: int) -> None: ...
    def waiters(self) -> int: ...
    async def check(self) -> dict:
        """Raise BackendUnavailable if notifications cannot reach other processes."""
        ...


class _LocalSubscription:
    def __init__(self, hub: LocalHub, ns: int) -> None:
        self._hub = hub
        self.ns = ns
        self.event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self._hub.remove(self)


class LocalHub:
    """In-process fan-out to the subscriptions of this process (used by every notifier)."""

    def __init__(self) -> None:
        self._subs: dict[int, set[_LocalSubscription]] = {}

    def subscribe(self, ns: int) -> _LocalSubscription:
        sub = _LocalSubscription(self, ns)
        self._subs.setdefault(ns, set()).add(sub)
        return sub

    def remove(self, sub: _LocalSubscription) -> None:
        subs = self._subs.get(sub.ns)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.ns]

    def wake(self, ns: int) -> None:
        for sub in self._subs.get(ns, ()):
            sub.event.set()

    def wake_all(self) -> None:
        for subs in self._subs.values():
            for sub in subs:
                sub.event.set()

    def count(self) -> int:
        return sum(len(s) for s in self._subs.values())


class InProcessNotifier:
    """The embedded default: one server process, notifications never leave it."""

    def __init__(self) -> None:
        self.hub = LocalHub()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.hub.wake_all()

    def subscribe(self, ns: int) -> Subscription:
        return self.hub.subscribe(ns)

    async def publish(self, ns: int, seq: int) -> None:
        self.hub.wake(ns)

    def waiters(self) -> int:
        return self.hub.count()

    async def check(self) -> dict:
        return {}


def open_notifier(url: str) -> Notifier:
    """`memory://` (embedded default) or `nats://HOST:PORT?subject=PREFIX`."""
    if url in ("memory://", "memory", "inprocess://"):
        return InProcessNotifier()
    if url.startswith("nats://"):
        from syncd.server.notify_nats import open_nats

        return open_nats(url)
    raise ValueError(
        f"unsupported notifier URL {url!r} (expected memory:// or nats://HOST:PORT?subject=P)"
    )
