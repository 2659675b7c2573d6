"""The HTTP client of the sync server. Foreign errors become syncd errors here.

Every request is safe to retry: chunk uploads are content-addressed, commits carry a
client operation id, reads have no effect. So retries happen here, with backoff.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import blake3
import httpx

from syncd.errors import AuthError, Offline, RequestRejected, ServerBusy, TransportError
from syncd.transport.retry import Backoff, with_retries
from syncd.wire import BATCH_CONTENT_TYPE, ZSTD, encode_frames, iter_frames, zstd_compress

MAX_IDS = 10_000
COMPRESS_MIN = 4096  # JSON request bodies from this size go zstd-compressed
BATCH_BYTES = 8 << 20  # upload/download batches of small chunks up to this size


@dataclass(frozen=True)
class ChangesPage:
    entries: list[dict]
    cursor: int
    has_more: bool


def _convert(exc: httpx.HTTPError) -> TransportError:
    if isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError):
        return Offline(f"server unreachable: {exc.__class__.__name__}: {exc}")
    return Offline(f"HTTP error: {exc}")


INSUFFICIENT = 507  # over the storage quota: a definite answer, not a server fault


def _check(r: httpx.Response) -> httpx.Response:
    if r.status_code < 400:
        return r
    try:
        body = r.json()
        code, message = body.get("error", "error"), body.get("message", r.reason_phrase)
    except ValueError:
        body, code, message = {}, "error", r.text[:200] or r.reason_phrase
    if r.status_code == 401:
        raise AuthError(message)
    if r.status_code in (429, 503) or (r.status_code >= 500 and r.status_code != INSUFFICIENT):
        after = r.headers.get("retry-after")
        raise ServerBusy(
            f"server error {r.status_code}: {message}",
            retry_after=float(after) if after and after.isdigit() else None,
        )
    raise RequestRejected(r.status_code, code, message, body)


def _json_body(obj: object, headers: dict | None) -> tuple[bytes, dict]:
    """JSON, zstd-compressed when it is large enough for that to pay (block lists)."""
    body = json.dumps(obj, separators=(",", ":")).encode()
    out = {**(headers or {}), "Content-Type": "application/json"}
    if len(body) >= COMPRESS_MIN:
        packed = zstd_compress(body, level=3)
        if len(packed) < len(body) * 0.9:
            return packed, {**out, "Content-Encoding": ZSTD}
    return body, out


class ServerClient:
    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        ca: str | None = None,
        transport: httpx.BaseTransport | None = None,
        attempts: int = 4,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"User-Agent": "syncd"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca) if ca else True
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            verify=verify,
            transport=transport,
            limits=limits,
        )
        self.attempts = attempts
        self.backoff = backoff or Backoff()
        self.sleep = sleep

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, url: str, *, retry: bool = True, **kw: Any) -> httpx.Response:
        if "json" in kw:
            kw["content"], kw["headers"] = _json_body(kw.pop("json"), kw.get("headers"))

        def once() -> httpx.Response:
            try:
                return _check(self._http.request(method, url, **kw))
            except httpx.HTTPError as exc:
                raise _convert(exc) from exc

        if not retry:
            return once()
        return with_retries(once, attempts=self.attempts, backoff=self.backoff, sleep=self.sleep)

    # -- auth ------------------------------------------------------------------------
    def login(self, user: str, password: str, device: str) -> dict:
        body = {"user": user, "password": password, "device": device}
        return self._request("POST", "/v1/login", json=body).json()

    def me(self) -> dict:
        return self._request("GET", "/v1/me").json()

    def devices(self) -> list[dict]:
        return self._request("GET", "/v1/devices").json()["devices"]

    def revoke(self, device_id: int) -> None:
        self._request("DELETE", f"/v1/devices/{device_id}")

    # -- chunks ----------------------------------------------------------------------
    def missing(self, ns: int, ids: Iterable[str]) -> list[str]:
        unique = list(dict.fromkeys(ids))
        out: list[str] = []
        for start in range(0, len(unique), MAX_IDS):
            part = unique[start : start + MAX_IDS]
            r = self._request("POST", f"/v1/ns/{ns}/chunks/missing", json={"ids": part})
            out += r.json()["missing"]
        return out

    def put_chunk(self, ns: int, chunk_id: str, data: bytes | memoryview) -> None:
        self._request("PUT", f"/v1/ns/{ns}/chunks/{chunk_id}", content=bytes(data))

    def put_chunks(self, ns: int, chunks: list[tuple[str, bytes]]) -> None:
        """Upload many chunks: small ones batched into bodies of ~BATCH_BYTES."""
        batch: list[tuple[str, bytes]] = []
        size = 0
        for chunk_id, data in chunks:
            if len(data) >= BATCH_BYTES // 2:
                self.put_chunk(ns, chunk_id, data)
                continue
            batch.append((chunk_id, data))
            size += len(data)
            if size >= BATCH_BYTES:
                self._put_batch(ns, batch)
                batch, size = [], 0
        if batch:
            self._put_batch(ns, batch)

    def _put_batch(self, ns: int, batch: list[tuple[str, bytes]]) -> None:
        if len(batch) == 1:
            self.put_chunk(ns, *batch[0])
            return
        body = encode_frames(batch)
        self._request(
            "POST",
            f"/v1/ns/{ns}/chunks",
            content=body,
            headers={"Content-Type": BATCH_CONTENT_TYPE},
        )

    def get_chunk(self, ns: int, chunk_id: str) -> bytes:
        # The server may redirect to a signed URL (a CDN or the object store itself);
        # httpx drops our token on a redirect elsewhere, and the hash is checked below.
        url = f"/v1/ns/{ns}/chunks/{chunk_id}"
        data = self._request("GET", url, follow_redirects=True).content
        if blake3.blake3(data).hexdigest() != chunk_id:
            raise ServerBusy(f"chunk {chunk_id} arrived corrupted")
        return data

    def get_chunks(
        self, ns: int, ids: list[str], sizes: dict[str, int]
    ) -> Iterator[tuple[str, bytes | memoryview]]:
        """Yield (id, data) for each id, verified; small chunks fetched in batches (a
        batch's chunks are views into its one response body, not copies of it)."""
        batch: list[str] = []
        size = 0
        for chunk_id in dict.fromkeys(ids):
            n = sizes.get(chunk_id, BATCH_BYTES)
            if n >= BATCH_BYTES // 2:
                yield chunk_id, self.get_chunk(ns, chunk_id)
                continue
            batch.append(chunk_id)
            size += n
            if size >= BATCH_BYTES or len(batch) >= MAX_IDS:
                yield from self._get_batch(ns, batch)
                batch, size = [], 0
        if batch:
            yield from self._get_batch(ns, batch)

    def _get_batch(self, ns: int, ids: list[str]) -> Iterator[tuple[str, bytes | memoryview]]:
        if len(ids) == 1:
            yield ids[0], self.get_chunk(ns, ids[0])
            return
        body = self._request("POST", f"/v1/ns/{ns}/chunks/get", json={"ids": ids}).content
        got: dict[str, memoryview] = {}
        try:
            for chunk_id, data in iter_frames(body, max_chunk=1 << 26):
                if blake3.blake3(data).hexdigest() != chunk_id:
                    raise ServerBusy(f"chunk {chunk_id} arrived corrupted")
                got[chunk_id] = data
        except ValueError as exc:
            raise Offline(f"batch download cut short: {exc}") from exc
        for chunk_id in ids:
            if chunk_id not in got:
                raise Offline(f"batch download lacks chunk {chunk_id}")
            yield chunk_id, got[chunk_id]

    # -- journal ---------------------------------------------------------------------
    def commit_batch(self, ns: int, ops: list[dict]) -> list[dict]:
        return self._request("POST", f"/v1/ns/{ns}/commit_batch", json={"ops": ops}).json()[
            "results"
        ]

    def changes(
        self,
        ns: int,
        cursor: int,
        *,
        timeout: float = 0,
        limit: int = 1000,
        peek: bool = False,
        retry: bool | None = None,
    ) -> ChangesPage:
        """Entries after `cursor`; with `peek`, none: only the journal's end once there is
        anything past `cursor` (for a feed that wakes a reader pulling them itself).
        `retry`: retry failures with backoff (default: unless it long-polls)."""
        params: dict[str, Any] = {"cursor": cursor, "timeout": timeout, "limit": limit}
        if peek:
            params["peek"] = "true"
        r = self._request(
            "GET",
            f"/v1/ns/{ns}/changes",
            params=params,
            timeout=timeout + 30,
            retry=timeout == 0 if retry is None else retry,
        )
        body = r.json()
        return ChangesPage(body["entries"], body["cursor"], body["has_more"])

    def tree(self, ns: int) -> tuple[list[dict], int]:
        """The whole current tree and the cursor of its first page."""
        entries: list[dict] = []
        after, cursor = "", None
        while True:
            page = self._request("GET", f"/v1/ns/{ns}/tree", params={"after": after}).json()
            cursor = page["cursor"] if cursor is None else cursor
            entries += page["entries"]
            if page["next"] is None:
                return entries, cursor
            after = page["next"]

    def list_folder(self, ns: int, path: str) -> list[dict]:
        return self._request("GET", f"/v1/ns/{ns}/list", params={"path": path}).json()["entries"]

    def history(self, ns: int, path: str) -> list[dict]:
        return self._request("GET", f"/v1/ns/{ns}/history", params={"path": path}).json()["entries"]

    def restore(self, ns: int, path: str, rev: int, op_id: str | None = None) -> dict:
        body: dict[str, Any] = {"path": path, "rev": rev}
        if op_id:
            body["op_id"] = op_id
        return self._request("POST", f"/v1/ns/{ns}/restore", json=body).json()["entry"]
