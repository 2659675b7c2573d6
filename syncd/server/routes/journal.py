"""The metadata journal: commit, change feed (long-poll), list, tree, history, restore."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from syncd.server.app import (
    BackendsDep,
    NamespaceDep,
    PrincipalDep,
    checked_path,
    run_sync,
)
from syncd.server.errors import ApiError, error_body
from syncd.server.metastore import CommitOp, CommitResult, Entry, InvalidCommit
from syncd.server.schemas import (
    BlockModel,
    BlocksFromModel,
    CommitBatchRequest,
    CommitOpModel,
    RestoreRequest,
)
from syncd.wire import is_chunk_id

router = APIRouter(tags=["journal"])


def _to_op(model: CommitOpModel, earlier: dict[int, Entry]) -> CommitOp:
    path = checked_path(model.path)
    if model.action != "file" and (model.blocks or model.blocks_from):
        raise ApiError(400, "bad_request", f"{path}: only files carry blocks")
    if model.blocks and model.blocks_from:
        raise ApiError(400, "bad_request", f"{path}: blocks or blocks_from, not both")
    spec = model.blocks_from
    explicit = [r for r in spec.runs if isinstance(r, BlockModel)] if spec else model.blocks
    bad = [blk.id for blk in explicit if not is_chunk_id(blk.id)]
    if bad:
        raise ApiError(400, "bad_chunk_id", "chunk ids are 64 lowercase hex characters", bad=bad)
    if spec:
        blocks = _expand(path, spec, earlier.get(spec.rev))
    else:
        blocks = tuple((blk.id, blk.size) for blk in model.blocks)
    return CommitOp(
        path=path,
        action=model.action,
        parent_rev=model.parent_rev,
        size=model.size,
        mode=model.mode,
        mtime_ns=model.mtime_ns,
        blocks=blocks,
        op_id=model.op_id,
    )


def _expand(path: str, spec: BlocksFromModel, entry: Entry | None) -> tuple[tuple[str, int], ...]:
    """The block list `spec` describes, from the earlier revision `entry` of this namespace.

    Its chunks are owned by this namespace already (its own journal references them);
    the commit checks ownership of the result as for any block list anyway (D5).
    """
    if entry is None or entry.kind != "file" or entry.deleted:
        raise ApiError(
            404,
            "unknown_revision",
            f"{path}: blocks_from.rev {spec.rev} is not a file revision in this namespace",
        )
    out: list[tuple[str, int]] = []
    for run in spec.runs:
        if isinstance(run, BlockModel):
            out.append((run.id, run.size))
            continue
        start, count = run
        if start < 0 or count < 1 or start + count > len(entry.blocks):
            raise ApiError(
                400,
                "bad_run",
                f"{path}: run [{start}, {count}] is outside revision {spec.rev}"
                f" ({len(entry.blocks)} blocks)",
            )
        out.extend(entry.blocks[start : start + count])
    return tuple(out)


async def _ops(b: BackendsDep, ns: int, models: list[CommitOpModel]) -> list[CommitOp]:
    revs = {m.blocks_from.rev for m in models if m.blocks_from is not None}
    earlier = {}
    for rev in revs:
        entry = await run_sync(b.meta.entry_at, ns, rev)
        if entry is not None:
            earlier[rev] = entry
    return [_to_op(m, earlier) for m in models]


def _result_json(result: CommitResult) -> dict:
    if result.status == "ok":
        assert result.entry is not None
        return {"status": "ok", "entry": result.entry.to_json(), "replayed": result.replayed}
    if result.status == "conflict":
        current = result.current.to_json() if result.current else None
        return {"status": "conflict", "current": current}
    return {"status": "missing", "missing": list(result.missing)}


async def _commit(
    b: BackendsDep, ns: int, who: PrincipalDep, ops: list[CommitOp]
) -> list[CommitResult]:
    try:
        results = await run_sync(
            b.meta.commit, ns, ops, who.user.name, who.device.name, time.time()
        )
    except InvalidCommit as exc:
        raise ApiError(400, "invalid_commit", str(exc)) from None
    written = [r.entry.seq for r in results if r.entry is not None and not r.replayed]
    if written:
        await b.notifier.publish(ns, max(written))
    return results


def _single_response(result: CommitResult) -> JSONResponse:
    if result.status == "ok":
        return JSONResponse(_result_json(result))
    if result.status == "conflict":
        current = result.current.to_json() if result.current else None
        body = error_body("conflict", "parent_rev is not the current revision", current=current)
        return JSONResponse(body, status_code=409)
    body = error_body(
        "missing_chunks", "upload the missing chunks, then retry", missing=list(result.missing)
    )
    return JSONResponse(body, status_code=412)


@router.post(
    "/v1/ns/{ns}/commit",
    summary="Commit one file, directory or delete (409 stale parent, 412 missing chunks)",
)
async def commit(
    body: CommitOpModel, ns: NamespaceDep, who: PrincipalDep, b: BackendsDep
) -> JSONResponse:
    (result,) = await _commit(b, ns.id, who, await _ops(b, ns.id, [body]))
    return _single_response(result)


@router.post(
    "/v1/ns/{ns}/commit_batch",
    summary="Commit many ops in one transaction; each op succeeds or fails on its own",
)
async def commit_batch(
    body: CommitBatchRequest, ns: NamespaceDep, who: PrincipalDep, b: BackendsDep
) -> dict:
    results = await _commit(b, ns.id, who, await _ops(b, ns.id, body.ops))
    return {"results": [_result_json(r) for r in results]}


def _entries(entries: list[Entry]) -> list[dict]:
    return [e.to_json() for e in entries]


@router.get(
    "/v1/ns/{ns}/changes",
    summary="Journal entries after a cursor; with timeout>0, waits for the next commit",
)
async def changes(
    ns: NamespaceDep,
    b: BackendsDep,
    cursor: Annotated[int, Query(ge=0)] = 0,
    timeout: Annotated[float, Query(ge=0)] = 0.0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    peek: Annotated[bool, Query()] = False,
) -> dict:
    """With `peek`, no entries: just the journal's end once it is past `cursor` (a change
    feed that only wakes a reader which then pulls the entries itself)."""
    if cursor > ns.seq:
        raise ApiError(
            410, "cursor_ahead", f"cursor {cursor} is past the journal's end {ns.seq}: resync"
        )
    woke = None
    sub = b.notifier.subscribe(ns.id)
    try:
        fetch = 1 if peek else limit + 1
        entries = await run_sync(b.meta.changes, ns.id, cursor, fetch)
        if not entries and timeout > 0:
            notified = await sub.wait(min(timeout, b.config.longpoll_max))
            woke = "notify" if notified else "timeout"
            entries = await run_sync(b.meta.changes, ns.id, cursor, fetch)
    finally:
        sub.close()
    if peek:
        current = await run_sync(b.meta.namespace, ns.id)
        end = current.seq if current is not None and entries else cursor
        return {"entries": [], "cursor": end, "has_more": False, "woke": woke}
    has_more = len(entries) > limit
    entries = entries[:limit]
    return {
        "entries": _entries(entries),
        "cursor": entries[-1].seq if entries else cursor,
        "has_more": has_more,
        "woke": woke,
    }


@router.get("/v1/ns/{ns}/tree", summary="The current tree in path order, paged, with its cursor")
async def tree(
    ns: NamespaceDep,
    b: BackendsDep,
    after: str = "",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 5000,
) -> dict:
    entries = await run_sync(b.meta.tree, ns.id, after, limit)
    return {
        "entries": _entries(entries),
        "cursor": ns.seq,
        "next": entries[-1].path if len(entries) == limit else None,
    }


@router.get("/v1/ns/{ns}/list", summary="The current children of a folder ('' is the root)")
async def list_folder(ns: NamespaceDep, b: BackendsDep, path: str = "") -> dict:
    folder = checked_path(path, allow_root=True)
    entries = await run_sync(b.meta.list_folder, ns.id, folder)
    if folder and not entries:
        here = await run_sync(b.meta.current, ns.id, folder)
        if here is None or here.deleted:
            raise ApiError(404, "not_found", f"no folder {folder!r}")
        if here.kind != "dir":
            raise ApiError(400, "not_a_folder", f"{folder!r} is a file")
    return {"path": folder, "entries": _entries(entries)}


@router.get("/v1/ns/{ns}/entry", summary="The current entry at a path")
async def entry(ns: NamespaceDep, b: BackendsDep, path: str) -> dict:
    found = await run_sync(b.meta.current, ns.id, checked_path(path))
    if found is None:
        raise ApiError(404, "not_found", f"nothing has ever been at {path!r}")
    return {"entry": found.to_json()}


@router.get("/v1/ns/{ns}/history", summary="Revisions of a path, newest first")
async def history(
    ns: NamespaceDep,
    b: BackendsDep,
    path: str,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict:
    entries = await run_sync(b.meta.history, ns.id, checked_path(path), limit)
    if not entries:
        raise ApiError(404, "not_found", f"no history for {path!r}")
    return {"path": path, "entries": _entries(entries)}


@router.post(
    "/v1/ns/{ns}/restore",
    summary="Restore an old revision: a new revision whose content is the old one",
)
async def restore(
    body: RestoreRequest, ns: NamespaceDep, who: PrincipalDep, b: BackendsDep
) -> JSONResponse:
    path = checked_path(body.path)
    old = await run_sync(b.meta.entry_at, ns.id, body.rev)
    if old is None or old.path != path:
        raise ApiError(404, "unknown_revision", f"no revision {body.rev} of {path!r}")
    if old.deleted:
        raise ApiError(400, "bad_request", f"revision {body.rev} is a deletion; pick another")
    current = await run_sync(b.meta.current, ns.id, path)
    op = CommitOp(
        path=path,
        action=old.kind,
        parent_rev=current.rev if current is not None else None,
        size=old.size,
        mode=old.mode,
        mtime_ns=old.mtime_ns,
        blocks=old.blocks,
        op_id=body.op_id,
    )
    (result,) = await _commit(b, ns.id, who, [op])
    return _single_response(result)
