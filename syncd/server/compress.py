"""zstd on JSON bodies, both ways: a request sent with `Content-Encoding: zstd` is
inflated (bounded, against zip bombs) before the route reads it, and a JSON response of
`MIN_SIZE` bytes or more goes out zstd-compressed to a client that accepts zstd.

Journal entries carry block lists of 64-hex ids (a 100 MiB file: ~1,300 of them, ~130 KB
of JSON); compressed they take about half, since each id is 32 bytes of entropy spelled
in 64 characters. Requests without the header and clients that do not accept zstd see
exactly what they saw before.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncd.wire import ZSTD, FrameError, zstd_compress, zstd_decompress

MIN_SIZE = 1024
JSON = "application/json"


class ZstdJson:
    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if headers.get("content-encoding", "").lower() == ZSTD and headers.get(
            "content-type", ""
        ).startswith(JSON):
            inflated = await self._inflate(receive, send)
            if inflated is None:
                return
            scope, receive = _replay(scope, inflated, receive)
        if ZSTD in headers.get("accept-encoding", "").lower():
            send = _Deflating(send).send
        await self.app(scope, receive, send)

    async def _inflate(self, receive: Receive, send: Send) -> bytes | None:
        raw = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            raw += message.get("body", b"")
            if len(raw) > self.max_body:
                await _refuse(send, 413, "too_large", f"request body exceeds {self.max_body} bytes")
                return None
            if not message.get("more_body", False):
                break
        try:
            return zstd_decompress(bytes(raw), max_size=self.max_body)
        except FrameError as exc:
            await _refuse(send, 413, "too_large", str(exc))
        except Exception:
            await _refuse(send, 400, "bad_encoding", "body is not valid zstd")
        return None


def _replay(scope: Scope, body: bytes, receive: Receive) -> tuple[Scope, Receive]:
    """The scope and receive a route sees: the inflated body, then the real channel
    (a streaming response listens on it for the client going away)."""
    headers = [
        (k, v)
        for k, v in scope["headers"]
        if k.lower() not in (b"content-encoding", b"content-length")
    ]
    headers.append((b"content-length", str(len(body)).encode()))
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return {**scope, "headers": headers}, replay


class _Deflating:
    """Holds a JSON response's start until its whole body is known, then compresses it."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._start: Message | None = None
        self._body = bytearray()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = Headers(raw=message["headers"])
            if (
                headers.get("content-type", "").startswith(JSON)
                and "content-encoding" not in headers
            ):
                self._start = message
                return
            await self._send(message)
            return
        if self._start is None or message["type"] != "http.response.body":
            await self._send(message)
            return
        self._body += message.get("body", b"")
        if message.get("more_body", False):
            return
        start, body = self._start, bytes(self._body)
        self._start = None
        if len(body) >= MIN_SIZE:
            packed = zstd_compress(body, level=3)
            if len(packed) < len(body):
                headers = MutableHeaders(raw=start["headers"])
                headers["content-encoding"] = ZSTD
                headers["content-length"] = str(len(packed))
                headers.add_vary_header("Accept-Encoding")
                body = packed
        await self._send(start)
        await self._send({"type": "http.response.body", "body": body, "more_body": False})


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
