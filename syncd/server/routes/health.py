"""`/healthz`: a real check of every backend, for load balancers and people.

Each backend is asked for real, concurrently, with a time limit: the metastore runs a
query (every shard, where it can say so), the block store writes, reads back and
deletes a probe object, the notifier round-trips to its broker. All answer: 200. One
fails: 503 naming it. `?optional=notify` reports a backend without failing on it: a
load balancer uses that for the notifier, since a process without NATS still serves
correctly (its long-polls end at their timeout, D4) and should stay in rotation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from syncd.server.app import Backends, BackendsDep, run_sync
from syncd.server.errors import BackendUnavailable, error_body

router = APIRouter(tags=["ops"])
CHECK_TIMEOUT = 5.0  # seconds a backend may take to answer before it counts as down
BACKENDS = ("meta", "blocks", "notify")
_NAME = "(" + "|".join(BACKENDS) + ")"
OPTIONAL_PATTERN = f"^({_NAME}(,{_NAME})*)?$"


def _query_meta(meta: object) -> dict:
    """Blocking: one query on a single database; on a sharded store, the directory's
    shard list read afresh and one query on every shard."""
    shards = getattr(meta, "shards", None)
    store = getattr(meta, "store", None)
    if callable(shards) and callable(store):
        found = shards(fresh=True)
        for shard in found:
            store(shard.id).seq(0)
        return {"shards": len(found)}
    meta.namespace(0)  # type: ignore[attr-defined]
    return {}


async def _meta(b: Backends) -> dict:
    return await run_sync(_query_meta, b.meta)


async def _blocks(b: Backends) -> dict:
    await b.blocks.check()
    return {}


async def _notify(b: Backends) -> dict:
    return await b.notifier.check()


CHECKS: dict[str, Callable[[Backends], Awaitable[dict]]] = {
    "meta": _meta,
    "blocks": _blocks,
    "notify": _notify,
}


async def _run(name: str, b: Backends) -> dict:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(CHECKS[name](b), CHECK_TIMEOUT)
        result: dict = {"ok": True, **detail}
    except TimeoutError:
        result = {"ok": False, "error": f"no answer within {CHECK_TIMEOUT:.0f} s"}
    except BackendUnavailable as exc:
        result = {"ok": False, "error": exc.message}
    except Exception as exc:  # any driver's failure is this backend being down
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


@router.get("/healthz", summary="Checks that every backend answers (503 names the failed ones)")
async def healthz(
    b: BackendsDep,
    optional: Annotated[
        str,
        Query(
            description="backends to report but not fail on, comma-separated",
            pattern=OPTIONAL_PATTERN,
            max_length=64,
        ),
    ] = "",
) -> JSONResponse:
    lenient = {name for name in optional.split(",") if name}
    results = await asyncio.gather(*(_run(name, b) for name in BACKENDS))
    report = dict(zip(BACKENDS, results, strict=True))
    failed = [name for name in BACKENDS if not report[name]["ok"] and name not in lenient]
    body = {"backends": report, "waiters": b.notifier.waiters()}
    if failed:
        reasons = "; ".join(f"{name}: {report[name]['error']}" for name in failed)
        return JSONResponse(
            error_body("unhealthy", f"backend check failed: {reasons}", failed=failed, **body),
            status_code=503,
            headers={"Retry-After": "2"},
        )
    return JSONResponse({"ok": True, **body})
