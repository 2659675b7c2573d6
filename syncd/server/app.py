"""The ASGI application: backends opened from the config, routes, errors, auth."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, TypeVar

import anyio.to_thread
from fastapi import Depends, FastAPI, Request

from syncd import __version__
from syncd.errors import InvalidPath
from syncd.paths import validate_path
from syncd.server.auth import token_hash
from syncd.server.blockstore import BlockStore, open_blockstore
from syncd.server.compress import ZstdJson
from syncd.server.config import ServerConfig
from syncd.server.errors import ApiError, install_error_handlers
from syncd.server.metastore import Device, MetaStore, Namespace, User, open_metastore
from syncd.server.notify import Notifier, open_notifier
from syncd.server.quota import Quota
from syncd.server.ratelimit import Guard
from syncd.server.schemas import ERROR_RESPONSES

T = TypeVar("T")


@dataclass
class Backends:
    config: ServerConfig
    meta: MetaStore
    blocks: BlockStore
    notifier: Notifier
    guard: Guard
    quota: Quota


@dataclass(frozen=True)
class Principal:
    device: Device
    user: User


async def run_sync(func: Callable[..., T], *args: object) -> T:
    """Run blocking metastore work off the event loop."""
    return await anyio.to_thread.run_sync(func, *args)


def client_address(request: Request) -> str:
    """The peer's address (uvicorn applies X-Forwarded-For from trusted proxies)."""
    return request.client.host if request.client else "unknown"


async def backends(request: Request) -> Backends:
    """(async: FastAPI would run a plain function in its thread pool, a thread hop for
    an attribute lookup on every request)"""
    return request.app.state.backends


BackendsDep = Annotated[Backends, Depends(backends)]


async def principal(request: Request, b: BackendsDep) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401, "unauthorized", "missing bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    address = client_address(request)
    await b.guard.check_token(address)
    found = await run_sync(b.meta.device_by_token, token_hash(token.strip()))
    if found is None:
        await b.guard.token_failed(address)
        raise ApiError(
            401,
            "unauthorized",
            "invalid or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Principal(*found)


PrincipalDep = Annotated[Principal, Depends(principal)]


async def namespace(ns: int, who: PrincipalDep, b: BackendsDep) -> Namespace:
    def lookup() -> Namespace | None:  # one thread hop for both
        return b.meta.namespace(ns) if b.meta.can_access(who.user.id, ns) else None

    found = await run_sync(lookup)
    if found is None:  # no access (or, which can_access rules out, no such namespace)
        raise ApiError(403, "forbidden", f"no access to namespace {ns}")
    return found


NamespaceDep = Annotated[Namespace, Depends(namespace)]


def checked_path(path: object, *, allow_root: bool = False) -> str:
    try:
        return validate_path(path, allow_root=allow_root)
    except InvalidPath as exc:
        raise ApiError(400, "invalid_path", exc.message, path=exc.path) from None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "too_large", f"request body exceeds {limit} bytes")
    pieces: list[bytes] = []
    size = 0
    async for piece in request.stream():
        size += len(piece)
        if size > limit:
            raise ApiError(413, "too_large", f"request body exceeds {limit} bytes")
        pieces.append(piece)
    return b"".join(pieces)  # one copy (a growing bytearray copied it twice or more)


def create_app(config: ServerConfig) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config.data.mkdir(parents=True, exist_ok=True)
        meta = open_metastore(config.resolved_meta_url())
        notifier = open_notifier(config.notify_url)
        await notifier.start()
        blocks = open_blockstore(config.resolved_blocks_url())
        app.state.backends = Backends(
            config,
            meta,
            blocks,
            notifier,
            Guard(config.limits),
            Quota(config.quota_bytes, meta.stored_bytes),
        )
        app.state.started = time.time()
        try:
            yield
        finally:
            await notifier.close()
            blocks.close()
            meta.close()

    app = FastAPI(
        title="syncd server",
        version=__version__,
        summary="Content-addressed chunks, a journal per namespace, change notifications.",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    install_error_handlers(app)
    app.add_middleware(ZstdJson, max_body=config.max_json_bytes)
    from syncd.server.routes import auth, chunks, health, journal

    app.include_router(auth.router)
    app.include_router(health.router)
    app.include_router(chunks.router)
    app.include_router(journal.router)
    return app
