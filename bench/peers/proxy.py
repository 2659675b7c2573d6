"""A counting TCP proxy: every contender's traffic passes one, so bytes are counted alike.

Each `Proxy` listens on an ephemeral 127.0.0.1 port and forwards to a target port,
adding up the bytes it carries in each direction: `inbound` (from the connecting side
to the listener behind the proxy) and `outbound` (back). All proxies share one asyncio
loop in a background thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass

READ_SIZE = 256 << 10


@dataclass
class Counts:
    inbound: int = 0
    outbound: int = 0

    @property
    def total(self) -> int:
        return self.inbound + self.outbound


class ProxyLoop:
    """The event loop all proxies run on (a daemon thread)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: object, timeout: float = 30.0) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class Proxy:
    """127.0.0.1:`port` -> 127.0.0.1:`target`, counting bytes each way."""

    def __init__(self, loop: ProxyLoop, target: int, name: str = "") -> None:
        self.loop = loop
        self.target = target
        self.name = name
        self.counts = Counts()
        self._lock = threading.Lock()
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    def start(self) -> Proxy:
        self._server = self.loop.run(asyncio.start_server(self._serve, "127.0.0.1", 0))  # type: ignore[assignment]
        assert self._server is not None
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def snapshot(self) -> Counts:
        with self._lock:
            return Counts(self.counts.inbound, self.counts.outbound)

    def retarget(self, target: int) -> None:
        """New connections go to `target` (a restarted listener on another port)."""
        self.target = target

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer, inbound=True),
            self._pipe(up_reader, writer, inbound=False),
        )
        for w in (writer, up_writer):
            with contextlib.suppress(OSError, RuntimeError):
                w.close()
        self._writers -= {writer, up_writer}

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, inbound: bool
    ) -> None:
        try:
            while data := await reader.read(READ_SIZE):
                with self._lock:
                    if inbound:
                        self.counts.inbound += len(data)
                    else:
                        self.counts.outbound += len(data)
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                if writer.can_write_eof():
                    writer.write_eof()
                else:
                    writer.close()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.loop.run(self._close(), timeout=5)
