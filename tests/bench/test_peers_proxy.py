"""The harness's counting proxy carries every byte both ways, counts each direction,
passes a half-close on, and lets go of its connections when stopped."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from bench.peers.proxy import Proxy


class _Echo(socketserver.BaseRequestHandler):
    """Sends back the sha256 of everything it got, after the client's half-close, then
    `reply` bytes of its own."""

    reply = 3 << 20

    def handle(self) -> None:
        h = hashlib.sha256()
        while data := self.request.recv(1 << 16):
            h.update(data)
        self.request.sendall(h.digest() + b"r" * self.reply)


@pytest.fixture
def echo() -> Iterator[int]:
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def _exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        got = bytearray()
        while data := s.recv(1 << 16):
            got += data
    return bytes(got)


def test_carries_and_counts_both_directions(echo: int):
    p = Proxy(echo, "t").start()
    try:
        payloads = [os.urandom(n) for n in (0, 1, 5 << 20, 123_457)]
        for payload in payloads:
            got = _exchange(p.port, payload)
            assert got[:32] == hashlib.sha256(payload).digest()  # every byte arrived, in order
            assert got[32:] == b"r" * _Echo.reply  # and every byte came back
        counts = p.snapshot()
        assert counts.inbound == sum(map(len, payloads))
        assert counts.outbound == len(payloads) * (32 + _Echo.reply)
        assert counts.total == counts.inbound + counts.outbound
    finally:
        p.stop()


def test_many_connections_at_once_are_counted_exactly(echo: int):
    p = Proxy(echo).start()
    payloads = [os.urandom(200_000 + i) for i in range(8)]
    results: list[bytes] = [b""] * len(payloads)

    def one(i: int) -> None:
        results[i] = _exchange(p.port, payloads[i])

    try:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(payloads))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for payload, got in zip(payloads, results, strict=True):
            assert got[:32] == hashlib.sha256(payload).digest()
        assert p.snapshot().inbound == sum(map(len, payloads))
    finally:
        p.stop()


def test_retarget_and_a_target_that_is_gone(echo: int):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    p = Proxy(dead).start()
    try:
        # refused upstream: the proxy closes at once, and as the timing falls the client
        # sees an empty reply, a reset, a broken pipe or "not connected"
        with contextlib.suppress(OSError):
            assert _exchange(p.port, b"hello") == b""
        assert p.snapshot().total == 0
        p.retarget(echo)
        assert _exchange(p.port, b"hello")[:32] == hashlib.sha256(b"hello").digest()
    finally:
        p.stop()


def test_stop_ends_open_connections_and_the_listener(echo: int):
    p = Proxy(echo).start()
    s = socket.create_connection(("127.0.0.1", p.port))
    s.sendall(b"partial")  # never half-closed: the echo server waits for more
    p.stop()
    s.settimeout(30)
    try:
        assert s.recv(1) == b""  # the proxy shut the connection
    except ConnectionResetError:
        pass
    finally:
        s.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", p.port), timeout=5).close()
