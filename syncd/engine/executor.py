"""The executor: applies a plan through the transport (server) and LocalFS (folder).

Remote-side ops go first, in plan order: chunks the server lacks are read back from
the file (each verified against the id the scan gave it), uploaded in batches, then the
commits are sent in batches with `parent_rev` and an operation id. Then local-side ops,
in plan order: downloads (reusing local chunks where the index knows them), local
deletes, conflicts (local copy moved aside, remote version written), new bases.

A commit answered with a conflict or a local file that changed under a download is not
an error: the path is marked for a rescan and the next planning round decides again.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import TypeGuard

import blake3

from syncd.engine.conflicts import conflict_name
from syncd.engine.localfs import DISK_FULL, ConflictDetected, LocalFS, os_reason
from syncd.engine.ops import (
    Conflict,
    DeleteLocal,
    DeleteRemote,
    Download,
    MoveAside,
    Op,
    SetBase,
    Upload,
)
from syncd.engine.remote import commit_op, delete_op, state_from_entry
from syncd.engine.scanned import ScannedContent, slices
from syncd.errors import FileError, RequestRejected
from syncd.indexer.db import Index
from syncd.indexer.state import Block, FileState
from syncd.transport.client import ServerClient

log = logging.getLogger("syncd.executor")

COMMIT_BATCH = 1000
COMMIT_GROUP_BYTES = 16 << 20  # new chunks uploaded before their files are committed
QUOTA_EXCEEDED = 507  # the server's answer when the user's storage quota is full
UPLOAD_BATCH_BYTES = 8 << 20  # chunks of many files travel together up to this size
Chunk = bytes | memoryview  # a chunk's bytes, or a view into a batch's response body
SMALL_FILE = 1 << 20  # files up to this size are downloaded in batches
DOWNLOAD_BATCH_BYTES = 32 << 20
WORKERS = 4  # uploads in flight
# A file a remote delete removes is kept this long in the state folder (up to this much
# in all), so its chunks can still build a file: a folder moved on another device whose
# deletions come in before all of its new files, a file moved out and back in.
KEEP_SECONDS = 3600.0
KEEP_BYTES = 1 << 30


@dataclass
class Outcome:
    rescan: set[str] = field(default_factory=set)  # paths whose local state must be re-read
    problems: dict[str, str] = field(default_factory=dict)  # path -> why it was skipped
    conflicts: list[str] = field(default_factory=list)  # conflicted copies made
    committed: int = 0
    applied: int = 0

    @property
    def progress(self) -> bool:
        """Something changed: worth planning again at once. A path that failed (it has a
        problem) is not progress: it is retried later, with a growing delay."""
        changed = self.rescan - self.problems.keys()
        return bool(self.committed or self.applied or changed or self.conflicts)


DELTA_REFUSED = ("unknown_revision", "bad_run")  # a blocks_from the server cannot expand


class Executor:
    def __init__(
        self,
        index: Index,
        fs: LocalFS,
        client: ServerClient,
        ns: int,
        device: str,
        *,
        today: Callable[[], date] = date.today,
        on_progress: Callable[[str, int], None] | None = None,
        scanned: ScannedContent | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock  # when a deleted file was kept (`KEEP_SECONDS`)
        self.index = index
        self.fs = fs
        self.client = client
        self.ns = ns
        self.device = device
        self.today = today
        self.on_progress = on_progress or (lambda _kind, _n: None)
        self.scanned = scanned  # contents the scan read, sent without reading them again
        self._threads: ThreadPoolExecutor | None = None
        self._fetcher: ThreadPoolExecutor | None = None  # the next download batch, ahead
        # What the journal holds past the last pull (set by the loop): the files of the
        # next round, whose first batch is fetched while this round's last is written.
        self.lookahead: Callable[[], list[FileState]] | None = None
        self._ahead: Future[dict[str, Chunk]] | None = None
        self._not_owned: set[str] = set()  # the server said it lacks these: always ask
        self._flusher: ThreadPoolExecutor | None = None  # a staged batch's flush to disk
        self._flushing: _Staged | None = None  # staged and flushing; placed after the next

    def run(self, ops: list[Op]) -> Outcome:
        out = Outcome()
        remote_ops = [op for op in ops if isinstance(op, Upload | DeleteRemote)]
        local_ops = [op for op in ops if not isinstance(op, Upload | DeleteRemote)]
        if remote_ops:
            self._push(remote_ops, out)
        steps = _download_batches(local_ops)
        fetching: Future[dict[str, Chunk]] | None = None  # the chunks of steps[i], ahead
        try:
            for i, step in enumerate(steps):
                if not isinstance(step, list):
                    self._place_flushed(out)  # every step after the batches before it
                    try:
                        self._apply_local(step, out)
                    except FileError as exc:
                        log.warning("skipped %s: %s", exc.path, exc.reason)
                        out.problems[step.path] = exc.reason
                        out.rescan.add(step.path)
                    continue
                fetched = fetching.result() if fetching is not None else self._take_ahead()
                fetching = None
                later = steps[i + 1] if i + 1 < len(steps) else None
                if isinstance(later, list):  # fetch the next batch while this one is written
                    fetching = self._prefetch(later)
                self._download_many(step, out, fetched, last=later is None)
        finally:
            self._place_flushed(out)  # what is staged is placed, even if a later step failed
        if any(why.endswith(DISK_FULL) for why in out.problems.values()):
            self.tidy_kept(everything=True)  # their room first: the retry may fit then
        return out

    # -- upload and commit -------------------------------------------------------------
    def _push(self, ops: list[Op], out: Outcome) -> None:
        """Upload the chunks the server lacks and commit, a group at a time: a group's
        commits go out as soon as its chunks are stored, so other devices start pulling
        the first files while this one still uploads the rest (and a failure later on
        keeps what was committed). Groups are prefixes of `ops`, in the planner's order."""
        uploads = [op for op in ops if _file_upload(op)]
        ids = {b.id for op in uploads for b in op.local.blocks} - self._owned(uploads)
        missing = set(self.client.missing(self.ns, list(ids))) if ids else set()
        failed: set[str] = set()
        groups = _commit_groups(ops, missing)
        done = 0
        try:
            with _Uploader(self) as uploader:
                waiting: deque[tuple[list[Op], list[Future[None]]]] = deque()
                for group in groups:
                    self._upload(group, missing, failed, out, uploader)
                    waiting.append((group, uploader.flush_group()))
                    # commit the groups before this one while its chunks are in flight
                    while len(waiting) > 1:
                        self._commit_stored(*waiting.popleft(), failed, out)
                        done += 1
                while waiting:
                    self._commit_stored(*waiting.popleft(), failed, out)
                    done += 1
        except RequestRejected as exc:
            if exc.status != QUOTA_EXCEEDED:
                raise
            rest = [op for group in groups[done:] for op in group]
            left = [op for op in rest if _file_upload(op)]
            failed |= self._upload_what_fits(left, failed, out)
            self._commit_all([op for op in rest if op.path not in failed], out)
            raise  # the loop reports it and retries later

    def _upload(
        self,
        ops: list[Op],
        missing: set[str],
        failed: set[str],
        out: Outcome,
        uploader: _Uploader,
    ) -> None:
        """Hand `uploader` the chunks of `ops`' files that the server lacks (each once)."""
        for op in ops:
            if not _file_upload(op):
                continue
            wanted = _first_of_each(op.local.blocks, missing)
            kept = self.scanned.take(op.local.blocks) if self.scanned is not None else None
            try:
                pieces = (
                    self._read_blocks(op.path, wanted) if kept is None else slices(kept, wanted)
                )
                for chunk_id, data in pieces:
                    if chunk_id in missing:  # not already sent for another file
                        missing.discard(chunk_id)
                        uploader.add(chunk_id, data)
            except FileError as exc:
                failed.add(op.path)
                out.rescan.add(op.path)
                out.problems[op.path] = exc.reason

    def _commit_stored(
        self, group: list[Op], uploads: list[Future[None]], failed: set[str], out: Outcome
    ) -> None:
        """Commit `group` once the uploads of its chunks are stored (D5: blocks first)."""
        for upload in uploads:
            upload.result()  # raises what the upload raised: nothing of the group commits
        self._commit_all([op for op in group if op.path not in failed], out)

    def _commit_all(self, ops: list[Op], out: Outcome) -> None:
        for start in range(0, len(ops), COMMIT_BATCH):
            self._commit(ops[start : start + COMMIT_BATCH], out)

    def _upload_what_fits(self, uploads: list[Upload], failed: set[str], out: Outcome) -> set[str]:
        """Over quota: upload file by file, smallest first, so every file that fits still
        syncs. Returns the paths that did not fit."""
        ids = list({b.id for op in uploads for b in op.local.blocks})
        missing = set(self.client.missing(self.ns, ids)) if ids else set()
        refused: set[str] = set()
        for op in sorted(uploads, key=lambda o: o.local.size):
            if op.path in failed:
                continue
            wanted = _first_of_each(op.local.blocks, missing)
            try:
                with _Uploader(self) as uploader:
                    for chunk_id, data in self._read_blocks(op.path, wanted):
                        uploader.add(chunk_id, data)
                missing.difference_update(b.id for _, b in wanted)
            except FileError as exc:
                refused.add(op.path)
                out.rescan.add(op.path)
                out.problems[op.path] = exc.reason
            except RequestRejected as exc:
                if exc.status != QUOTA_EXCEEDED:
                    raise
                refused.add(op.path)
                out.problems[op.path] = f"not uploaded: {exc.body.get('message') or exc}"
        return refused

    def _owned(self, uploads: list[Upload]) -> set[str]:
        """Chunks the namespace surely has: those of each file's committed base revision.

        Asking only about the rest keeps the `missing` query of a small edit to a big
        file small (a 100 MiB file has ~1,300 chunks; an edit changes one or two).
        """
        owned: set[str] = set()
        for op in uploads:
            base = self.index.get("base", op.path)
            if base is not None and base.kind == "file":
                owned.update(b.id for b in base.blocks)
        return owned - self._not_owned

    def _read_blocks(
        self, path: str, wanted: list[tuple[int, Block]]
    ) -> Iterator[tuple[str, bytes | memoryview]]:
        full = self.fs.abspath(path)
        try:
            with open(full, "rb") as f:
                for offset, block in wanted:
                    f.seek(offset)
                    data = f.read(block.size)
                    if len(data) != block.size or blake3.blake3(data).hexdigest() != block.id:
                        raise FileError(path, "changed since it was scanned; will retry")
                    yield block.id, data
        except OSError as exc:
            raise FileError(path, os.strerror(exc.errno or 0) or str(exc)) from None

    def _commit(self, ops: list[Op], out: Outcome) -> None:
        op_ids = [uuid.uuid4().hex for _ in ops]
        try:
            results = self.client.commit_batch(self.ns, self._requests(ops, op_ids, True))
        except RequestRejected as exc:
            if exc.code not in DELTA_REFUSED:
                raise
            # the base revision a block list was told against is unknown to the server
            # (restored from an older backup): send every block list whole
            results = self.client.commit_batch(self.ns, self._requests(ops, op_ids, False))
        with self.index.transaction():
            for op, result in zip(ops, results, strict=True):
                status = result["status"]
                if status == "ok":
                    out.committed += 1
                    state = state_from_entry(result["entry"])
                    if state is None:
                        self.index.delete("base", op.path)
                    else:
                        self.index.put("base", state)
                elif status == "conflict":
                    # the remote moved on: the change feed brings the new entry; replan then
                    log.info("commit of %s raced another device; replanning", op.path)
                    out.rescan.add(op.path)
                else:
                    log.warning("server still lacks chunks of %s; retrying", op.path)
                    self._not_owned.update(result.get("missing", ()))
                    out.rescan.add(op.path)

    def _requests(self, ops: list[Op], op_ids: list[str], delta: bool) -> list[dict]:
        requests = []
        for op, op_id in zip(ops, op_ids, strict=True):
            if isinstance(op, Upload):
                base = self.index.get("base", op.path) if delta else None
                requests.append(commit_op(op.local, op.parent_rev, op_id, base))
            else:
                assert isinstance(op, DeleteRemote)
                requests.append(delete_op(op.path, op.parent_rev, op_id))
        return requests

    # -- local application -------------------------------------------------------------
    def _apply_local(self, op: Op, out: Outcome) -> None:
        if isinstance(op, SetBase):
            if op.state is None:
                self.index.delete("base", op.path)
            else:
                self.index.put("base", op.state)
            return
        if isinstance(op, Download):
            self._download(op.path, op.remote, self.index.get("local", op.path), out)
            return
        if isinstance(op, DeleteLocal):
            expect = self.index.get("local", op.path)
            name = uuid.uuid4().hex if _worth_keeping(expect) else None
            if expect is None or self.fs.delete(op.path, expect, keep_as=name):
                with self.index.transaction():
                    self.index.delete("local", op.path)
                    self.index.delete("base", op.path)
                    if expect is not None and name is not None:
                        self.index.keep(name, expect, self.clock())
                out.applied += 1
            else:
                out.rescan.add(op.path)
            return
        if isinstance(op, Conflict):
            self._conflict(op, out)
            return
        if isinstance(op, MoveAside):
            self._move_aside(op.path, out)
            return
        raise AssertionError(f"unexpected op {op!r}")

    def _download(
        self, path: str, remote: FileState, expect: FileState | None, out: Outcome
    ) -> None:
        try:
            if remote.kind == "dir":
                local = self.fs.mkdir(path, remote, expect)
            else:
                chunks = self._chunks_for(remote)  # each verified where it was read
                local = self.fs.write_file(path, remote, chunks, expect, verified=True)
        except ConflictDetected:
            out.rescan.add(path)
            return
        with self.index.transaction():
            self.index.put("local", local)
            self.index.put("base", remote)
        out.applied += 1

    def _chunks_for(self, state: FileState) -> Iterator[Chunk]:
        """The file's chunks in order: from local files where possible, else the server.

        Chunks the server must send are fetched in batches, in order of first use, so
        the download streams; only chunks that repeat within the file are kept.
        """
        counts = Counter(b.id for b in state.blocks)
        sources = self._local_sources(list(counts))
        need = [chunk_id for chunk_id in counts if chunk_id not in sources]
        sizes = {b.id: b.size for b in state.blocks}
        fetched = self.client.get_chunks(self.ns, need, sizes) if need else iter(())
        repeats: dict[str, Chunk] = {}
        for block in state.blocks:
            data = repeats.get(block.id)
            if data is None and block.id in sources:
                data = self.fs.read_chunk(*sources[block.id], block.id)
                if data is None:  # that file changed since it was indexed
                    data = self.client.get_chunk(self.ns, block.id)
                    self.on_progress("down", len(data))
            if data is None:
                chunk_id, data = next(fetched)
                assert chunk_id == block.id, "chunks arrive in order of first use"
                self.on_progress("down", len(data))
            if counts[block.id] > 1:
                repeats[block.id] = data
            yield data

    def _local_sources(self, ids: list[str]) -> dict[str, tuple[str, int, int]]:
        """Chunk id -> (path, offset, size) where a local file holds it: a settled file
        of the folder (`Index.find_blocks`), else a kept deleted one."""
        found = self.index.find_blocks(ids)
        rest = [chunk_id for chunk_id in ids if chunk_id not in found]
        if rest:
            for chunk_id, (name, offset, size) in self.index.find_kept(rest).items():
                found[chunk_id] = (self.fs.kept_path(name), offset, size)
        return found

    def tidy_kept(self, *, everything: bool = False) -> None:
        """Remove kept deleted files past KEEP_SECONDS or beyond KEEP_BYTES (`everything`:
        all of them)."""
        before = float("inf") if everything else self.clock() - KEEP_SECONDS
        self.fs.remove_kept(self.index.expire_kept(before, KEEP_BYTES))

    def remove_stray_kept(self) -> None:
        """Remove kept files the index does not know (a process killed between moving
        one aside and recording it): once, at start."""
        known = self.index.kept_names()
        self.fs.remove_kept(n for n in self.fs.kept_files() if n not in known)

    def _prefetch(self, ops: list[Download]) -> Future[dict[str, Chunk]]:
        return self._prefetch_states([op.remote for op in ops])

    def _prefetch_states(self, states: list[FileState]) -> Future[dict[str, Chunk]]:
        """Start fetching, on a thread of its own, the chunks of `states` that no local
        file holds (asked now, on this thread: the index is not shared across threads).
        What a local file turns out not to hold after all is fetched when written."""
        wanted = list(dict.fromkeys(b.id for st in states for b in st.blocks))
        sources = self._local_sources(wanted)
        remote = [chunk_id for chunk_id in wanted if chunk_id not in sources]
        sizes = {b.id: b.size for st in states for b in st.blocks}

        def fetch() -> dict[str, Chunk]:
            data = {}
            for chunk_id, chunk in self.client.get_chunks(self.ns, remote, sizes):
                data[chunk_id] = chunk
                self.on_progress("down", len(chunk))
            return data

        if self._fetcher is None:
            self._fetcher = ThreadPoolExecutor(1, thread_name_prefix="syncd-fetch")
        return self._fetcher.submit(fetch)

    def _fetch_ahead(self) -> None:
        """Start fetching the chunks of the small files the journal holds past the last
        pull, up to a batch, in the planner's order: most likely the next round's first
        batch. Only a guess: the next round plans from scratch and takes what matches."""
        if self.lookahead is None:
            return
        self._ahead = None
        batch: list[FileState] = []
        size = 0
        for st in sorted(self.lookahead(), key=lambda s: (s.path.count("/"), s.path)):
            if st.kind != "file" or st.size > SMALL_FILE:
                continue
            batch.append(st)
            size += st.size
            if size >= DOWNLOAD_BATCH_BYTES:
                break
        if batch:
            self._ahead = self._prefetch_states(batch)

    def _take_ahead(self) -> dict[str, Chunk]:
        """The chunks fetched ahead for this round, if any came (a failed guess costs
        nothing: those chunks are fetched again when needed)."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return {}
        try:
            return ahead.result()
        except Exception as exc:  # a guess: the batch fetches what it lacks itself
            log.debug("fetching ahead failed: %s", exc)
            return {}

    def drop_ahead(self) -> None:
        """Forget chunks fetched ahead (the cycle ended: the next one may be long off)."""
        self._ahead = None

    def _download_many(
        self,
        ops: list[Download],
        out: Outcome,
        fetched: dict[str, Chunk] | None = None,
        *,
        last: bool = False,
    ) -> None:
        """Small files: their chunks in a few batched requests (or `fetched` ahead),
        then written. The `last` batch of a round, once its own chunks are here, starts
        fetching the next round's first batch while it writes (`_fetch_ahead`)."""
        data: dict[str, Chunk] = dict(fetched or {})
        need: list[str] = []
        wanted = list(dict.fromkeys(b.id for op in ops for b in op.remote.blocks))
        sources = self._local_sources([i for i in wanted if i not in data])
        for chunk_id in wanted:
            if chunk_id in data:
                continue
            found = sources.get(chunk_id)
            chunk = self.fs.read_chunk(*found, chunk_id) if found else None
            if chunk is None:
                need.append(chunk_id)
            else:
                data[chunk_id] = chunk
        sizes = {b.id: b.size for op in ops for b in op.remote.blocks}
        for chunk_id, chunk in self.client.get_chunks(self.ns, need, sizes):
            data[chunk_id] = chunk
            self.on_progress("down", len(chunk))
        if last:
            self._fetch_ahead()
        expects = self.index.get_many("local", [op.path for op in ops])

        def stage(op: Download) -> str | FileError:
            try:
                chunks = (data[b.id] for b in op.remote.blocks)
                return self.fs.stage_file(op.path, op.remote, chunks, durable=False, verified=True)
            except FileError as exc:
                return exc

        # One file after another: one syncfs flushes them all, so there is no fsync to
        # overlap, and threads creating the files only passed the GIL around.
        staged = list(map(stage, ops))
        names = [s for s in staged if isinstance(s, str)]
        if self._flusher is None:
            self._flusher = ThreadPoolExecutor(1, thread_name_prefix="syncd-flush")
        # The flush runs while the next batch is staged; this batch is placed after that
        # (or at the end of the round), once its flush is done.
        flushing = _Staged(ops, staged, expects, self._flusher.submit(self.fs.sync_staged, names))
        self._place_flushed(out)
        self._flushing = flushing

    def _place_flushed(self, out: Outcome) -> None:
        """Place the batch staged last, once its files are on disk (D7: every staged file
        durable before any rename), and record what was written."""
        batch, self._flushing = self._flushing, None
        if batch is None:
            return
        ops, staged, expects = batch.ops, batch.staged, batch.expects
        try:
            batch.flushed.result()
        except OSError as exc:
            self.fs.discard_staged(s for s in staged if isinstance(s, str))
            reason = f"could not flush the download to disk: {os_reason(exc)}"
            staged = [FileError(op.path, reason) for op in ops]
        results = [
            tmp if isinstance(tmp, FileError) else self._place(op, tmp, expects.get(op.path))
            for op, tmp in zip(ops, staged, strict=True)
        ]
        self.fs.sync_dirs(op.path for op, r in zip(ops, results, strict=True) if _written(r))
        placed: list[tuple[FileState, FileState]] = []  # (local, base) of each file written
        for op, result in zip(ops, results, strict=True):
            if isinstance(result, ConflictDetected):
                out.rescan.add(op.path)
            elif isinstance(result, FileError):
                log.warning("skipped %s: %s", op.path, result.reason)
                out.problems[op.path] = result.reason
                out.rescan.add(op.path)
            elif isinstance(result, FileState):
                placed.append((result, op.remote))
                out.applied += 1
        with self.index.transaction():
            self.index.put_many("local", [local for local, _ in placed])
            self.index.put_many("base", [base for _, base in placed])

    def _place(self, op: Download, tmp: str, expect: FileState | None) -> FileState | Exception:
        try:
            return self.fs.place_file(op.path, op.remote, tmp, expect, sync_dir=False)
        except (ConflictDetected, FileError) as exc:
            return exc

    def _pool(self) -> ThreadPoolExecutor:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(WORKERS, thread_name_prefix="syncd-io")
        return self._threads

    def _conflict(self, op: Conflict, out: Outcome) -> None:
        self._move_aside(op.path, out)
        self._download(op.path, op.remote, None, out)

    def _move_aside(self, path: str, out: Outcome) -> None:
        """Keep the local version as a conflicted copy (it is uploaded after the rescan)."""
        new_path = conflict_name(path, self.device, self.today(), self.fs.exists)
        self.fs.move_aside(path, new_path)
        log.warning("conflict on %s: local copy kept as %s", path, new_path)
        out.conflicts.append(new_path)
        out.rescan.update({path, new_path})
        with self.index.transaction():
            self.index.delete("local", path)


@dataclass
class _Staged:
    """A download batch written to temp files, whose flush to disk is under way."""

    ops: list[Download]
    staged: list[str | FileError]  # each op's temp file, or why it could not be written
    expects: dict[str, FileState]  # what each path held when the batch was planned
    flushed: Future[None]


class _Uploader:
    """Collects chunks into batches and keeps up to WORKERS uploads in flight."""

    def __init__(self, executor: Executor) -> None:
        self.ex = executor
        self.batch: list[tuple[str, bytes | memoryview]] = []
        self.size = 0
        self.inflight: deque[Future[None]] = deque()
        self.sent: list[Future[None]] = []  # uploads since the last flush_group()

    def __enter__(self) -> _Uploader:
        return self

    def __exit__(self, exc_type: type | None, *_: object) -> None:
        if self.batch and exc_type is None:
            self._flush()
        first: BaseException | None = None
        while self.inflight:  # wait for every upload, even after a failure
            try:
                self.inflight.popleft().result()
            except Exception as err:
                first = first or err
        if first is not None and exc_type is None:
            raise first

    def add(self, chunk_id: str, data: bytes | memoryview) -> None:
        self.batch.append((chunk_id, data))
        self.size += len(data)
        if self.size >= UPLOAD_BATCH_BYTES:
            self._flush()

    def flush_group(self) -> list[Future[None]]:
        """Send what is batched; the uploads of every chunk added since the last call."""
        if self.batch:
            self._flush()
        sent, self.sent = self.sent, []
        return sent

    def _flush(self) -> None:
        batch, size = self.batch, self.size
        self.batch, self.size = [], 0
        while len(self.inflight) >= WORKERS:
            self.inflight.popleft().result()

        def send() -> None:
            self.ex.client.put_chunks(self.ex.ns, batch)
            self.ex.on_progress("up", size)

        future = self.ex._pool().submit(send)
        self.inflight.append(future)
        self.sent.append(future)


def _download_batches(ops: list[Op]) -> list[Op | list[Download]]:
    """`ops` in order, with each run of small-file downloads cut into batches of about
    DOWNLOAD_BATCH_BYTES (a list each); every other op stands alone. Pure."""
    steps: list[Op | list[Download]] = []
    batch: list[Download] = []
    size = 0
    for op in ops:
        if _small_file(op):
            assert isinstance(op, Download)
            batch.append(op)
            size += op.remote.size
            if size >= DOWNLOAD_BATCH_BYTES:
                steps.append(batch)
                batch, size = [], 0
            continue
        if batch:
            steps.append(batch)
            batch, size = [], 0
        steps.append(op)
    if batch:
        steps.append(batch)
    return steps


def _file_upload(op: Op) -> TypeGuard[Upload]:
    return isinstance(op, Upload) and op.local.kind == "file"


def _commit_groups(ops: list[Op], missing: set[str]) -> list[list[Op]]:
    """Split `ops` (in order) into groups carrying about COMMIT_GROUP_BYTES of chunks the
    server lacks, or COMMIT_BATCH ops, whichever comes first. Pure."""
    groups: list[list[Op]] = [[]]
    size = 0
    seen: set[str] = set()
    for op in ops:
        if _file_upload(op):
            for block in op.local.blocks:
                if block.id in missing and block.id not in seen:
                    seen.add(block.id)
                    size += block.size
        groups[-1].append(op)
        if size >= COMMIT_GROUP_BYTES or len(groups[-1]) >= COMMIT_BATCH:
            groups.append([])
            size = 0
    return [g for g in groups if g]


def _worth_keeping(state: FileState | None) -> bool:
    """Whether the file `state` describes is kept when a remote delete removes it."""
    return (
        state is not None
        and state.kind == "file"
        and bool(state.blocks)
        and state.size <= KEEP_BYTES
    )


def _written(result: FileState | Exception) -> bool:
    return isinstance(result, FileState)


def _small_file(op: Op) -> bool:
    return isinstance(op, Download) and op.remote.kind == "file" and op.remote.size <= SMALL_FILE


def _first_of_each(blocks: tuple[Block, ...], ids: set[str]) -> list[tuple[int, Block]]:
    """(offset, block) of the first occurrence of each block whose id is in `ids`: a
    chunk repeated within a file (the zeros of a sparse file) is read and sent once."""
    seen: set[str] = set()
    wanted = []
    for offset, block in _offsets(blocks):
        if block.id in ids and block.id not in seen:
            seen.add(block.id)
            wanted.append((offset, block))
    return wanted


def _offsets(blocks: tuple[Block, ...]) -> Iterator[tuple[int, Block]]:
    offset = 0
    for block in blocks:
        yield offset, block
        offset += block.size
