"""The PostgreSQL metastore: a directory database and N shards, routed by namespace.

URLs (the `--meta` option):
- `postgresql://USER@HOST:PORT/DB` — DB is the directory. The shard list is stored in
  it; a directory with none yet becomes its own first shard (one database holds
  everything: the simple deployment). `syncd server reshard --add URL` adds shards.
- `pgshards://?directory=URL&shard=URL&shard=URL…` — the same, except that a new
  directory starts with these shards (percent-encode a `?` or `&` inside a shard URL).
  Once the directory has shards, each `shard=` must be one of them.
Both take `pool_min`/`pool_max` per database (see postgres_pool).

Server processes keep no state of their own: the shard list and placements are read
from the directory and cached for a second or two. A stale cache cannot lose writes:
a moving namespace's head is frozen on its old shard and deleted from it once moved,
so a write through an old placement fails there, and the router re-reads the
placement and retries, or refuses with NamespaceMoving (HTTP 503 + Retry-After).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import parse_qsl, urlsplit

from syncd.server.metastore.base import (
    CommitOp,
    CommitResult,
    Device,
    Entry,
    InvalidCommit,
    Namespace,
    NamespaceMoving,
    User,
)
from syncd.server.metastore.directory import Directory, Placement, Shard
from syncd.server.metastore.postgres_pool import redacted
from syncd.server.metastore.postgres_shard import Frozen, NotHere, ShardStore
from syncd.server.metastore.ring import HashRing, namespace_key

T = TypeVar("T")
PLACEMENT_TTL = 1.0  # seconds a process trusts a cached placement
SHARDS_TTL = 2.0  # seconds a process trusts its shard list
_CACHE_MAX = 100_000
_TRIES = 3


def parse_url(url: str) -> tuple[str, list[str]]:
    """(directory URL, shards a new directory starts with)."""
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres"):
        return url, []
    if parts.scheme != "pgshards":
        raise ValueError(f"not a PostgreSQL metastore URL: {url!r}")
    query = parse_qsl(parts.query)
    directory = [v for k, v in query if k == "directory"]
    shards = [v for k, v in query if k == "shard"]
    unknown = {k for k, _ in query} - {"directory", "shard"}
    if len(directory) != 1 or unknown:
        raise ValueError(
            f"{url!r}: expected pgshards://?directory=URL&shard=URL… (one directory,"
            " any number of shards)"
        )
    return directory[0], shards


def open_postgres(url: str) -> PostgresMetaStore:
    directory, shards = parse_url(url)
    return PostgresMetaStore(directory, shards)


class PostgresMetaStore:
    """The MetaStore protocol over a Directory and its ShardStores (thread-safe)."""

    def __init__(
        self,
        directory_url: str,
        initial_shards: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = Directory(directory_url)
        self._clock = clock
        self._lock = threading.Lock()
        self._stores: dict[int, ShardStore] = {}
        self._placements: dict[int, tuple[Placement, float]] = {}
        self._shards: list[Shard] = []
        self._ring: HashRing | None = None
        self._shards_read = float("-inf")
        try:
            self._bootstrap(directory_url, initial_shards)
        except BaseException:
            self.close()
            raise

    def _bootstrap(self, directory_url: str, initial: Sequence[str]) -> None:
        known = self.directory.shards()
        if not known:
            for url in initial or [directory_url]:
                self.directory.add_shard(url)
        else:
            stray = set(initial) - {s.url for s in known}
            if stray:
                names = ", ".join(redacted(u) for u in sorted(stray))
                raise ValueError(
                    f"shards {names} are not in the directory's list;"
                    " add them with `syncd server reshard --add URL`"
                )
        for shard in self.shards(fresh=True):
            self._store(shard.id)  # migrates it: a new shard gets its schema on start

    # -- shards and placement --------------------------------------------------------
    def shards(self, fresh: bool = False) -> list[Shard]:
        with self._lock:
            if fresh or self._clock() - self._shards_read > SHARDS_TTL:
                self._shards = self.directory.shards()
                self._ring = HashRing(s.node for s in self._shards)
                self._shards_read = self._clock()
            return list(self._shards)

    def ring(self, fresh: bool = False) -> HashRing:
        self.shards(fresh)
        assert self._ring is not None
        return self._ring

    def home_of(self, ns: int, fresh: bool = False) -> Shard:
        """The shard the ring assigns `ns` to."""
        node = self.ring(fresh).node_for(namespace_key(ns))
        return next(s for s in self.shards() if s.node == node)

    def store(self, shard_id: int) -> ShardStore:
        return self._store(shard_id)

    def _store(self, shard_id: int) -> ShardStore:
        with self._lock:
            found = self._stores.get(shard_id)
        if found is not None:
            return found
        shard = next((s for s in self.shards() if s.id == shard_id), None)
        if shard is None:
            shard = next((s for s in self.shards(fresh=True) if s.id == shard_id), None)
        if shard is None:
            raise LookupError(f"no shard {shard_id} in the directory")
        opened = ShardStore(shard)
        with self._lock:
            if shard_id in self._stores:
                opened.close()
                return self._stores[shard_id]
            self._stores[shard_id] = opened
            return opened

    def placement(self, ns: int, fresh: bool = False) -> Placement | None:
        now = self._clock()
        with self._lock:
            cached = self._placements.get(ns)
        if cached is not None and not fresh and now - cached[1] <= PLACEMENT_TTL:
            return cached[0]
        found = self.directory.placement(ns)
        with self._lock:
            if len(self._placements) > _CACHE_MAX:
                self._placements.clear()
            if found is None:
                self._placements.pop(ns, None)
            else:
                self._placements[ns] = (found, now)
        return found

    def _read(
        self,
        ns: int,
        fn: Callable[[ShardStore], T],
        none: T,
        vacant: Callable[[T], bool] = lambda result: not result,
    ) -> T:
        """fn on the namespace's shard. A `vacant` answer may come from a shard the
        namespace has just left: then the placement is read again and fn retried."""
        result = none
        for attempt in range(_TRIES):
            where = self.placement(ns, fresh=attempt > 0)
            if where is None:
                return none
            store = self._store(where.shard)
            result = fn(store)
            if not vacant(result) or store.has(ns):
                return result
        return result

    def _write(self, ns: int, fn: Callable[[ShardStore], T]) -> T:
        """fn on the namespace's shard, unless it is moving (NamespaceMoving)."""
        for attempt in range(_TRIES):
            where = self.placement(ns, fresh=attempt > 0)
            if where is None:
                raise InvalidCommit(f"namespace {ns} does not exist")
            if where.moving is not None:
                if attempt == 0:
                    continue  # the cached flag may be stale: read it again
                raise NamespaceMoving(ns)
            try:
                return fn(self._store(where.shard))
            except (NotHere, Frozen):
                continue  # the placement moved under us: read it again
        raise NamespaceMoving(ns)

    def close(self) -> None:
        with self._lock:
            stores, self._stores = list(self._stores.values()), {}
        for store in stores:
            store.close()
        self.directory.close()

    # -- users and devices -----------------------------------------------------------
    def create_user(
        self, name: str, email: str | None, password_hash: str, chunking: tuple[int, int, int]
    ) -> User:
        if self.directory.user_by_name(name) is not None:
            raise ValueError(f"user {name!r} already exists")
        ns = self.directory.new_namespace_id()
        shard = self.home_of(ns, fresh=True)
        # The head first: a failure after it leaves an unused head, never a placement
        # pointing at nothing.
        self._store(shard.id).create_head(ns)
        return self.directory.create_user(name, email, password_hash, chunking, ns, shard.id)

    def user_by_name(self, name: str) -> User | None:
        return self.directory.user_by_name(name)

    def add_device(self, user_id: int, name: str, token_hash: str, now: float) -> Device:
        return self.directory.add_device(user_id, name, token_hash, now)

    def device_by_token(self, token_hash: str) -> tuple[Device, User] | None:
        return self.directory.device_by_token(token_hash)

    def list_devices(self, user_id: int) -> list[Device]:
        return self.directory.list_devices(user_id)

    def revoke_device(self, user_id: int, device_id: int, now: float) -> bool:
        return self.directory.revoke_device(user_id, device_id, now)

    # -- namespaces and chunks -------------------------------------------------------
    def namespace(self, ns: int) -> Namespace | None:
        where = self.placement(ns)
        if where is None:
            return None
        seq = self._read(ns, lambda s: s.seq(ns), None)
        if seq is None:
            return None
        return Namespace(ns, where.owner, *where.chunking, seq)

    def can_access(self, user_id: int, ns: int) -> bool:
        where = self.placement(ns)
        return where is not None and where.owner == user_id

    def missing_chunks(self, ns: int, ids: Sequence[str]) -> list[str]:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        # "all missing" is also what a shard the namespace has left would answer
        return self._read(
            ns, lambda s: s.missing_chunks(ns, unique), unique, vacant=lambda r: r == unique
        )

    def stored_chunks(self, ids: Sequence[str]) -> set[str]:
        """Which of these chunks some namespace on some shard references."""
        found: set[str] = set()
        wanted = set(ids)
        for shard in self.shards():
            if not wanted - found:
                break
            found |= self._store(shard.id).stored_chunks(list(wanted - found))
        return found

    def chunk_stored(self, chunk_id: str) -> bool:
        return chunk_id in self.stored_chunks([chunk_id])

    def add_chunks(self, ns: int, chunks: Sequence[tuple[str, int]]) -> None:
        if chunks:
            self._write(ns, lambda s: s.add_chunks(ns, chunks))

    def owns_chunk(self, ns: int, chunk_id: str) -> int | None:
        return self._read(ns, lambda s: s.owns_chunk(ns, chunk_id), None)

    def stored_bytes(self, ns: int) -> int:
        return self._read(ns, lambda s: s.stored_bytes(ns), 0)

    # -- journal ---------------------------------------------------------------------
    def commit(
        self, ns: int, ops: Sequence[CommitOp], user: str, device: str, now: float
    ) -> list[CommitResult]:
        return self._write(ns, lambda s: s.commit(ns, ops, user, device, now))

    def changes(self, ns: int, cursor: int, limit: int) -> list[Entry]:
        return self._read(ns, lambda s: s.changes(ns, cursor, limit), [])

    def current(self, ns: int, path: str) -> Entry | None:
        return self._read(ns, lambda s: s.current(ns, path), None)

    def entry_at(self, ns: int, rev: int) -> Entry | None:
        return self._read(ns, lambda s: s.entry_at(ns, rev), None)

    def list_folder(self, ns: int, folder: str) -> list[Entry]:
        return self._read(ns, lambda s: s.list_folder(ns, folder), [])

    def tree(self, ns: int, after: str, limit: int) -> list[Entry]:
        return self._read(ns, lambda s: s.tree(ns, after, limit), [])

    def history(self, ns: int, path: str, limit: int) -> list[Entry]:
        return self._read(ns, lambda s: s.history(ns, path, limit), [])
