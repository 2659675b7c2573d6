"""A fault-injecting TCP proxy between a daemon and the server, switchable at run time.

`FaultProxy(upstream).start()` listens on 127.0.0.1 (ephemeral port) and forwards every
connection to the server. From any thread, `proxy.set(mode, ...)` changes what happens:

| mode       | effect                                                                      |
|------------|-----------------------------------------------------------------------------|
| `pass`     | bytes flow both ways untouched                                              |
| `drop`     | the network is gone: open connections and every new one are reset (RST)     |
| `delay`    | each piece of data waits `delay` seconds before it is forwarded             |
| `reset`    | `after` bytes into a body (`direction` "down": a reply, "up": a request),   |
|            | the connection is reset (RST) in the middle of it                           |
| `truncate` | the stream is cut after `after` bytes and closed cleanly (FIN): a short body |
| `stall`    | nothing is forwarded, connections stay open and silent, until the mode changes |

`count=N` limits `reset`/`truncate`/`drop` to the next N faults, then the proxy passes
again. Bytes are counted per connection from the moment the mode was set, so a fault
lands inside a transfer, not only at the start of a connection. `stats` counts
connections, bytes and faults fired (for the reliability figures).

Written for syncd's tests (asyncio in one background thread): Toxiproxy does the same
as a separate Go server, but cuts connections by time rather than at a byte offset and
is not packaged for the Debian release the CI uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

MODES = ("pass", "drop", "delay", "reset", "truncate", "stall")
Upstream = tuple[str, int] | Callable[[], tuple[str, int]]


@dataclass(eq=False)
class _Conn:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    gen: int = -1
    counted: dict[str, int] = field(default_factory=lambda: {"up": 0, "down": 0})
    done: bool = False


def _rst(writer: asyncio.StreamWriter | None) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed peer or a middlebox would."""
    if writer is None or writer.transport.is_closing():
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream
        self.mode = "pass"
        self.delay = 0.0
        self.after = 0
        self.direction = "down"
        self._count: int | None = None
        self._gen = 0
        self._lock = threading.Lock()
        self._conns: set[_Conn] = set()
        self.stats: Counter[str] = Counter()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    # -- control (any thread) ----------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", self.port)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="faultproxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def set(
        self,
        mode: str,
        *,
        delay: float = 0.0,
        after: int = 0,
        direction: str = "down",
        count: int | None = None,
    ) -> None:
        if mode not in MODES or direction not in ("up", "down"):
            raise ValueError(f"unknown mode {mode!r} or direction {direction!r}")
        with self._lock:
            self.mode, self.delay, self.after, self.direction = mode, delay, after, direction
            self._count = count
            self._gen += 1
        if mode == "drop" and self._loop is not None:
            self._loop.call_soon_threadsafe(self._drop_all)

    def heal(self) -> None:
        self.set("pass")

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            self._drop_all()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    # -- inside the event loop ---------------------------------------------------------
    def _fire(self, kind: str) -> bool:
        """Count a fault about to happen; False if the limited ones are used up."""
        with self._lock:
            if self._count is not None:
                if self._count <= 0:
                    return False
                self._count -= 1
                if self._count == 0:
                    self.mode = "pass"
                    self._gen += 1
        self.stats[f"fault_{kind}"] += 1
        return True

    def _drop_all(self) -> None:
        for conn in list(self._conns):
            self._kill(conn)

    def _kill(self, conn: _Conn) -> None:
        conn.done = True
        _rst(conn.client)
        _rst(conn.server)
        self._conns.discard(conn)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats["connections"] += 1
        conn = _Conn(writer)
        if self.mode == "drop" and self._fire("drop"):
            _rst(writer)
            return
        host, port = self._upstream() if callable(self._upstream) else self._upstream
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError:
            self.stats["upstream_refused"] += 1
            _rst(writer)
            return
        conn.server = up_writer
        self._conns.add(conn)
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, "up", conn),
                self._pump(up_reader, writer, "down", conn),
            )
        finally:
            self._conns.discard(conn)
            for w in (writer, up_writer):
                if not w.transport.is_closing():
                    w.close()

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, direction: str, conn: _Conn
    ) -> None:
        while not conn.done:
            try:
                data = await src.read(65536)
            except (ConnectionError, OSError):
                data = b""
            if conn.done:
                return
            if not data:  # one side closed: for HTTP the exchange is over
                conn.done = True
                with contextlib.suppress(OSError, RuntimeError):
                    dst.close()
                return
            data = await self._apply_faults(data, direction, conn)
            if data is None:
                return
            try:
                dst.write(data)
                await dst.drain()
            except (ConnectionError, OSError):
                self._kill(conn)
                return
            self.stats[f"bytes_{direction}"] += len(data)

    async def _apply_faults(self, data: bytes, direction: str, conn: _Conn) -> bytes | None:
        """The data to forward now, or None once the connection is gone."""
        while self.mode == "stall" and not conn.done:
            self.stats["stalled_reads"] += 1
            await asyncio.sleep(0.02)
        if conn.done:
            return None
        mode = self.mode
        if mode == "drop":
            if self._fire("drop"):
                self._kill(conn)
                return None
            return data
        if mode == "delay":
            self.stats["delayed"] += 1
            await asyncio.sleep(self.delay)
            return data
        if mode in ("reset", "truncate") and direction == self.direction:
            if conn.gen != self._gen:
                conn.gen, conn.counted = self._gen, {"up": 0, "down": 0}
            room = self.after - conn.counted[direction]
            conn.counted[direction] += len(data)
            if room < len(data) and self._fire(mode):
                await self._cut(conn, direction, data[: max(room, 0)], mode)
                return None
        return data

    async def _cut(self, conn: _Conn, direction: str, head: bytes, mode: str) -> None:
        dst = conn.server if direction == "up" else conn.client
        assert dst is not None
        with contextlib.suppress(ConnectionError, OSError):
            if head:
                dst.write(head)
                await dst.drain()
        if mode == "reset":
            self._kill(conn)
            return
        conn.done = True  # truncate: a clean close after the head, as a short body
        for w in (conn.client, conn.server):
            if w is not None and not w.transport.is_closing():
                w.close()
        self._conns.discard(conn)
