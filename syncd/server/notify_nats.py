"""Change notifications across server processes through NATS core subjects (D9).

`nats://HOST:PORT[,HOST:PORT…]?subject=PREFIX&reconnect_wait=SECONDS`: every commit is
published on `PREFIX.ns.<namespace>` (payload: the new sequence number) after the
journal has it; each process subscribes once to `PREFIX.ns.*` and fans out to its own
long-polls through a LocalHub. The prefix keeps deployments (and test runs) sharing
one NATS apart.

NATS is a hint, never the truth (D4). A process wakes its own long-polls directly, so
it never waits on the broker for itself. While NATS is unreachable, publishes are
dropped (counted), long-polls on other processes end at their timeout and read the
journal, and the client polls again; when the connection comes back every local
long-poll is woken once to re-read the journal, so what was committed meanwhile
arrives at once instead of at the next timeout. A server starts even if NATS is down
and keeps trying to connect in the background; `/healthz` reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from urllib.parse import parse_qs, urlparse

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from syncd.server.errors import BackendUnavailable
from syncd.server.notify import LocalHub, Subscription

log = logging.getLogger("syncd.server.notify")
_PREFIX = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
DEFAULT_PREFIX = "syncd"
START_WAIT = 3.0  # seconds start() waits for the first connection before going on


class NatsNotifier:
    def __init__(
        self,
        servers: list[str],
        prefix: str,
        reconnect_wait: float = 1.0,
        start_wait: float = START_WAIT,
    ) -> None:
        self.hub = LocalHub()
        self.start_wait = start_wait
        self.servers = servers
        self.prefix = prefix
        self.reconnect_wait = reconnect_wait
        self.published = 0
        self.dropped = 0  # publishes skipped while NATS was unreachable
        self.received = 0
        self._nc: Client | None = None
        self._connecting: asyncio.Task | None = None
        self._closing = False

    def subject(self, ns: int) -> str:
        return f"{self.prefix}.ns.{ns}"

    async def start(self) -> None:
        """Connect, waiting a moment; if NATS is down, nats-py keeps trying meanwhile."""
        self._connecting = asyncio.create_task(self._connect())
        done, _ = await asyncio.wait({self._connecting}, timeout=self.start_wait)
        if not done:
            log.warning("NATS at %s unreachable; connecting in the background", self)
        elif self._connecting.exception() is not None:
            log.warning("NATS at %s: %s", self, self._connecting.exception())

    def __str__(self) -> str:  # for logs: without any user:password@
        return ",".join(s.removeprefix("nats://").rpartition("@")[2] for s in self.servers)

    async def _connect(self) -> None:
        nc = await nats.connect(
            servers=self.servers,
            name="syncd-server",
            no_echo=True,  # this process wakes its own long-polls itself
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=self.reconnect_wait,
            connect_timeout=2,
            disconnected_cb=self._disconnected,
            reconnected_cb=self._reconnected,
            error_cb=self._error,
        )
        await nc.subscribe(f"{self.prefix}.ns.*", cb=self._on_message)
        await nc.flush()
        self._nc = nc
        log.info("notifications through NATS at %s on %s.ns.*", self, self.prefix)
        self.hub.wake_all()  # connected late: anything committed meanwhile, re-read it

    async def _disconnected(self) -> None:
        if not self._closing:
            log.warning("NATS connection lost; long-polls fall back to their timeout")

    async def _reconnected(self) -> None:
        log.info("NATS connection back; waking every long-poll to re-read its journal")
        self.hub.wake_all()

    async def _error(self, exc: Exception) -> None:
        log.debug("NATS: %s", exc)

    async def _on_message(self, msg: Msg) -> None:
        self.received += 1
        try:
            ns = int(msg.subject.rsplit(".", 1)[1])
        except ValueError:
            return
        self.hub.wake(ns)

    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    def subscribe(self, ns: int) -> Subscription:
        return self.hub.subscribe(ns)

    async def publish(self, ns: int, seq: int) -> None:
        """Wake this process's long-polls, then tell the others; never fails the commit."""
        self.hub.wake(ns)
        if not self.connected():
            self.dropped += 1
            return
        assert self._nc is not None
        try:
            await self._nc.publish(self.subject(ns), str(seq).encode())
            self.published += 1
        except (NatsError, OSError) as exc:
            self.dropped += 1
            log.warning("NATS publish for namespace %s failed: %s", ns, exc)

    def waiters(self) -> int:
        return self.hub.count()

    async def check(self) -> dict:
        if not self.connected():
            raise BackendUnavailable("notify", f"not connected to NATS at {self}")
        assert self._nc is not None
        try:
            await self._nc.flush(timeout=2)  # a PING/PONG round trip to the server
        except (NatsError, OSError, TimeoutError) as exc:
            raise BackendUnavailable("notify", f"NATS at {self}: {exc or 'no PONG'}") from None
        return {"published": self.published, "dropped": self.dropped, "received": self.received}

    async def close(self) -> None:
        self._closing = True
        self.hub.wake_all()
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, NatsError, OSError):
                await self._connecting
        if self._nc is not None:
            with contextlib.suppress(NatsError, OSError, TimeoutError):
                await self._nc.close()


def open_nats(url: str) -> NatsNotifier:
    parsed = urlparse(url)
    if not parsed.netloc:
        raise ValueError(f"notifier URL {url!r}: expected nats://HOST:PORT?subject=PREFIX")
    query = parse_qs(parsed.query)
    unknown = sorted(set(query) - {"subject", "reconnect_wait"})
    if unknown:
        raise ValueError(f"notifier URL: unknown parameter(s) {unknown}")
    prefix = query.get("subject", [DEFAULT_PREFIX])[-1]
    if not _PREFIX.match(prefix):
        raise ValueError(f"notifier URL: subject {prefix!r} must be dot-separated tokens")
    try:
        wait = float(query.get("reconnect_wait", ["1"])[-1])
    except ValueError:
        raise ValueError("notifier URL: reconnect_wait is seconds, e.g. 0.5") from None
    servers = [f"nats://{host}" for host in parsed.netloc.split(",") if host]
    return NatsNotifier(servers, prefix, reconnect_wait=wait)
