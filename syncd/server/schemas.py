"""Request bodies of the API (pydantic); responses are the JSON of metastore records."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_IDS = 10_000
MAX_OPS = 10_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    """Every refusal: a stable machine-readable code, a sentence for people, and details."""

    model_config = ConfigDict(extra="allow")
    error: str
    message: str


def _error(description: str) -> dict:
    return {"model": ErrorBody, "description": description}


# Documented on every operation: what any request may be refused with.
ERROR_RESPONSES: dict[int | str, dict] = {
    304: {"description": "Not modified (conditional chunk download)"},
    400: _error("Malformed request: bad JSON, unknown fields, a hostile path, a bad id"),
    401: _error("Missing, invalid or revoked token; wrong user name or password"),
    403: _error("No access to this namespace"),
    404: _error("No such chunk, path, revision or route"),
    405: _error("Method not allowed on this resource"),
    409: _error("A commit's parent revision is stale: the current entry is included"),
    412: _error("A commit references chunks the namespace does not have: their ids"),
    413: _error("Request body too large"),
    415: _error("Unsupported content encoding"),
    429: _error("Too many attempts: wait for Retry-After seconds"),
    503: _error("Temporarily unavailable: retry after Retry-After seconds"),
    507: _error("The user's storage quota would be exceeded"),
}


class LoginRequest(_Strict):
    user: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)
    device: str = Field(min_length=1, max_length=128)


class IdsRequest(_Strict):
    ids: list[str] = Field(max_length=MAX_IDS)


class BlockModel(_Strict):
    id: str = Field(min_length=64, max_length=64)
    size: int = Field(ge=0)


class BlocksFromModel(_Strict):
    """A block list told as a change to an earlier revision's: each run is either
    [start, count] (that many blocks of revision `rev`, from index `start`) or a block."""

    rev: int = Field(ge=1)
    runs: list[tuple[int, int] | BlockModel] = Field(max_length=1 << 20)


class CommitOpModel(_Strict):
    path: str = Field(max_length=8192)
    action: Literal["file", "dir", "delete"]
    parent_rev: int | None = Field(default=None, ge=0)
    size: int = Field(default=0, ge=0, le=1 << 50)
    mode: int = Field(default=0o644, ge=0, le=0o7777)
    mtime_ns: int = Field(default=0, ge=-(1 << 62), le=1 << 62)
    blocks: list[BlockModel] = Field(default_factory=list, max_length=1 << 20)
    # instead of `blocks`: the same list as runs of an earlier revision's (a small edit to a
    # big file then costs a few runs, not ~1,300 ids)
    blocks_from: BlocksFromModel | None = None
    op_id: str | None = Field(default=None, min_length=1, max_length=128)


class CommitBatchRequest(_Strict):
    ops: list[CommitOpModel] = Field(min_length=1, max_length=MAX_OPS)


class RestoreRequest(_Strict):
    path: str = Field(max_length=8192)
    rev: int = Field(ge=1)
    op_id: str | None = Field(default=None, min_length=1, max_length=128)
