"""Login, identity, devices."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response

from syncd.server.app import BackendsDep, PrincipalDep, client_address, run_sync
from syncd.server.auth import new_token, token_hash, verify_password
from syncd.server.errors import ApiError
from syncd.server.metastore import Namespace
from syncd.server.schemas import LoginRequest

router = APIRouter()


def _chunking(ns: Namespace | None) -> dict:
    if ns is None:
        return {}
    return {"min": ns.chunk_min, "avg": ns.chunk_avg, "max": ns.chunk_max}


@router.post("/v1/login", tags=["auth"], summary="Log a device in; returns its own token")
async def login(body: LoginRequest, request: Request, b: BackendsDep) -> dict:
    address = client_address(request)
    await b.guard.check_login(address, body.user)
    user = await run_sync(b.meta.user_by_name, body.user)
    ok = await run_sync(verify_password, user.password_hash if user else None, body.password)
    if user is None or not ok:
        await b.guard.login_failed(address, body.user)
        raise ApiError(401, "unauthorized", "wrong user name or password")
    token = new_token()
    device = await run_sync(b.meta.add_device, user.id, body.device, token_hash(token), time.time())
    ns = await run_sync(b.meta.namespace, user.namespace)
    return {
        "token": token,
        "user": user.name,
        "device_id": device.id,
        "device": device.name,
        "namespace": user.namespace,
        "chunking": _chunking(ns),
    }


@router.get("/v1/me", tags=["auth"], summary="Who this token is")
async def me(who: PrincipalDep, b: BackendsDep) -> dict:
    ns = await run_sync(b.meta.namespace, who.user.namespace)
    return {
        "user": who.user.name,
        "email": who.user.email,
        "device_id": who.device.id,
        "device": who.device.name,
        "namespace": who.user.namespace,
        "chunking": _chunking(ns),
        "seq": ns.seq if ns else 0,
    }


@router.get("/v1/devices", tags=["auth"], summary="This user's devices")
async def devices(who: PrincipalDep, b: BackendsDep) -> dict:
    found = await run_sync(b.meta.list_devices, who.user.id)
    return {
        "devices": [
            {
                "id": d.id,
                "name": d.name,
                "created": d.created,
                "revoked": d.revoked,
                "current": d.id == who.device.id,
            }
            for d in found
        ]
    }


@router.delete(
    "/v1/devices/{device_id}", tags=["auth"], status_code=204, summary="Revoke a device's token"
)
async def revoke(device_id: int, who: PrincipalDep, b: BackendsDep) -> Response:
    if not await run_sync(b.meta.revoke_device, who.user.id, device_id, time.time()):
        raise ApiError(404, "not_found", f"no active device {device_id} for this user")
    return Response(status_code=204)
