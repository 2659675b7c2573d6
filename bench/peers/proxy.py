"""A counting TCP proxy: every contender's traffic passes one, so bytes are counted alike.

Each `Proxy` listens on an ephemeral 127.0.0.1 port and forwards to a target port,
adding up the bytes it carries in each direction: `inbound` (from the connecting side
to the listener behind the proxy) and `outbound` (back).

The bytes never enter Python: each direction of a connection is a thread that moves
them socket -> pipe -> socket with `splice(2)`, which releases the GIL and copies no
payload through user space. An asyncio proxy that read and wrote every buffer cost the
harness's process (which also writes the changes and checks B) up to a CPU-second in a
scenario of 200 MB, and it carried syncd's bytes twice (A to the server, the server
to B) against a peer-to-peer tool's once; the measurement should weigh on no contender.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
from dataclasses import dataclass

PIPE_SIZE = 1 << 20  # bytes one splice may move (the pipe's capacity, if allowed)
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


@dataclass
class Counts:
    inbound: int = 0
    outbound: int = 0

    @property
    def total(self) -> int:
        return self.inbound + self.outbound


class Proxy:
    """127.0.0.1:`port` -> 127.0.0.1:`target`, counting bytes each way."""

    def __init__(self, target: int, name: str = "") -> None:
        self.target = target
        self.name = name
        self.counts = Counts()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._closed = False
        self.port = 0

    def start(self) -> Proxy:
        ls = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener = ls
        self.port = ls.getsockname()[1]
        threading.Thread(
            target=self._accept, args=(ls,), daemon=True, name=f"proxy-{self.name}"
        ).start()
        return self

    def snapshot(self) -> Counts:
        with self._lock:
            return Counts(self.counts.inbound, self.counts.outbound)

    def retarget(self, target: int) -> None:
        """New connections go to `target` (a restarted listener on another port)."""
        self.target = target

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            socks = list(self._open)
            ls, self._listener = self._listener, None
        if ls is not None:
            _shut(ls)  # wakes the accept (Linux returns EINVAL from a shut listener)
            ls.close()
        for s in socks:
            _shut(s)

    # -- connections -------------------------------------------------------------------
    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                down, _ = ls.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                down.close()
                continue
            for s in (down, up):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._closed:
                    down.close()
                    up.close()
                    return
                self._open |= {down, up}
            done = threading.Barrier(2, action=lambda d=down, u=up: self._forget(d, u))
            for src, dst, inbound in ((down, up, True), (up, down, False)):
                threading.Thread(
                    target=self._pipe, args=(src, dst, inbound, done), daemon=True
                ).start()

    def _pipe(
        self, src: socket.socket, dst: socket.socket, inbound: bool, done: threading.Barrier
    ) -> None:
        r, w = os.pipe()
        with contextlib.suppress(OSError):  # a smaller pipe only means more calls
            fcntl.fcntl(w, F_SETPIPE_SZ, PIPE_SIZE)
        try:
            while n := os.splice(src.fileno(), w, PIPE_SIZE, flags=os.SPLICE_F_MOVE):
                with self._lock:
                    if inbound:
                        self.counts.inbound += n
                    else:
                        self.counts.outbound += n
                while n:
                    n -= os.splice(r, dst.fileno(), n, flags=os.SPLICE_F_MOVE)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)  # pass the end of this direction on
        except OSError:  # a reset, or stop(): end both directions
            _shut(src)
            _shut(dst)
        finally:
            os.close(r)
            os.close(w)
            with contextlib.suppress(threading.BrokenBarrierError):
                done.wait()

    def _forget(self, down: socket.socket, up: socket.socket) -> None:
        with self._lock:
            self._open -= {down, up}
        down.close()
        up.close()


def _shut(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
