"""The metadata store interface and its records; implementations are chosen by URL.

Semantics every implementation keeps (D4, D5):
- each namespace has an append-only journal with a gap-free sequence starting at 1;
- an entry's revision (`rev`) is the sequence number that created it;
- a commit names the revision it replaces (`parent_rev`; None = the path must be absent
  or deleted) and is refused with the current entry when that is stale;
- the live entries always form a tree: a commit that would put something below a live
  file, or a file above live entries, is refused as a conflict with the entry in the
  way (a folder replaced by a file while another device added to it: the file waits
  until the folder is empty, and the client keeps it as a conflicted copy meanwhile);
- a commit that references chunks its namespace does not own is refused with the list;
- a retried commit with the same client operation id returns the first result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from syncd.paths import ext_of, name_of

EntryKind = Literal["file", "dir"]


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    email: str | None
    password_hash: str
    namespace: int


@dataclass(frozen=True, slots=True)
class Device:
    id: int
    user_id: int
    name: str
    created: float
    last_seen: float | None
    revoked: float | None


@dataclass(frozen=True, slots=True)
class Namespace:
    id: int
    owner: int
    chunk_min: int
    chunk_avg: int
    chunk_max: int
    seq: int


@dataclass(frozen=True, slots=True)
class Entry:
    """One journal entry: what an indexer needs to rebuild a file at one revision."""

    ns: int
    seq: int
    path: str
    kind: EntryKind
    deleted: bool
    size: int
    mode: int
    mtime_ns: int
    blocks: tuple[tuple[str, int], ...]
    user: str
    device: str
    op_id: str | None
    server_time: float
    prev_rev: int | None = None

    @property
    def rev(self) -> int:
        return self.seq

    def to_json(self) -> dict:
        return {
            "seq": self.seq,
            "rev": self.seq,
            "path": self.path,
            "name": name_of(self.path),
            "ext": ext_of(self.path),
            "kind": self.kind,
            "is_folder": self.kind == "dir",
            "deleted": self.deleted,
            "size": self.size,
            "mode": self.mode,
            "mtime_ns": self.mtime_ns,
            "blocks": [{"order": i, "id": b, "size": s} for i, (b, s) in enumerate(self.blocks)],
            "user": self.user,
            "device": self.device,
            "op_id": self.op_id,
            "server_time": self.server_time,
            "prev_rev": self.prev_rev,
        }


@dataclass(frozen=True, slots=True)
class CommitOp:
    """One requested change. `action` is "file", "dir" or "delete"."""

    path: str
    action: Literal["file", "dir", "delete"]
    parent_rev: int | None
    size: int = 0
    mode: int = 0o644
    mtime_ns: int = 0
    blocks: tuple[tuple[str, int], ...] = field(default=())
    op_id: str | None = None


class InvalidCommit(ValueError):
    """A commit that is malformed in a way the API layer could not see (e.g. sizes)."""


class MetaStoreUnavailable(Exception):
    """The metadata database cannot be reached right now (the API answers 503)."""

    retry_after = 2


class NamespaceMoving(MetaStoreUnavailable):
    """A reshard is moving this namespace to another shard: retry writes in a moment."""

    retry_after = 1

    def __init__(self, ns: int) -> None:
        super().__init__(f"namespace {ns} is moving to another shard; retry in a moment")
        self.ns = ns


@dataclass(frozen=True, slots=True)
class CommitResult:
    """status: "ok" (entry written or replayed), "conflict" (current given), "missing"."""

    status: Literal["ok", "conflict", "missing"]
    entry: Entry | None = None
    current: Entry | None = None
    missing: tuple[str, ...] = ()
    replayed: bool = False


class MetaStore(Protocol):
    # users and devices
    def create_user(
        self, name: str, email: str | None, password_hash: str, chunking: tuple[int, int, int]
    ) -> User: ...
    def user_by_name(self, name: str) -> User | None: ...
    def add_device(self, user_id: int, name: str, token_hash: str, now: float) -> Device: ...
    def device_by_token(self, token_hash: str) -> tuple[Device, User] | None: ...
    def list_devices(self, user_id: int) -> list[Device]: ...
    def revoke_device(self, user_id: int, device_id: int, now: float) -> bool: ...

    # namespaces and chunks
    def namespace(self, ns: int) -> Namespace | None: ...
    def can_access(self, user_id: int, ns: int) -> bool: ...
    def missing_chunks(self, ns: int, ids: Sequence[str]) -> list[str]: ...
    def chunk_stored(self, chunk_id: str) -> bool: ...
    def stored_chunks(self, ids: Sequence[str]) -> set[str]: ...
    def add_chunks(self, ns: int, chunks: Sequence[tuple[str, int]]) -> None: ...
    def owns_chunk(self, ns: int, chunk_id: str) -> int | None: ...
    def stored_bytes(self, ns: int) -> int: ...  # sizes of the distinct chunks ns owns

    # journal
    def commit(
        self, ns: int, ops: Sequence[CommitOp], user: str, device: str, now: float
    ) -> list[CommitResult]: ...
    def changes(self, ns: int, cursor: int, limit: int) -> list[Entry]: ...
    def current(self, ns: int, path: str) -> Entry | None: ...
    def entry_at(self, ns: int, rev: int) -> Entry | None: ...
    def list_folder(self, ns: int, folder: str) -> list[Entry]: ...
    def tree(self, ns: int, after: str, limit: int) -> list[Entry]: ...
    def history(self, ns: int, path: str, limit: int) -> list[Entry]: ...
    def close(self) -> None: ...


def open_metastore(url: str) -> MetaStore:
    """`sqlite:///abs/path.db` (embedded default), `postgresql://HOST/DB` (one directory
    database, its shard list stored in it) or `pgshards://?directory=URL&shard=URL...`
    (see syncd.server.metastore.postgres)."""
    if url.startswith("sqlite:///"):
        from syncd.server.metastore.sqlite import SqliteMetaStore

        return SqliteMetaStore(url.removeprefix("sqlite://"))
    if url.startswith(("postgresql://", "postgres://", "pgshards://")):
        from syncd.server.metastore.postgres import open_postgres

        return open_postgres(url)
    raise ValueError(
        f"unsupported metadata store URL {url!r}"
        " (expected sqlite:///PATH, postgresql://HOST/DB or pgshards://?directory=…&shard=…)"
    )
