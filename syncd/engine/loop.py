"""The sync loop: one control thread that scans, pulls the journal, plans and executes.

Other threads (watcher, change feed, control socket) only post events to its queue.
Each round: pull remote entries up to the journal's end → rescan dirty paths → plan
(a pure function of the three trees) → execute → repeat until nothing is left to do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from syncd.chunker import ChunkParams, ChunkRef, chunk_file_keeping
from syncd.engine.executor import Executor, Outcome
from syncd.engine.localfs import LocalFS
from syncd.engine.ops import Conflict, DeleteLocal, DeleteRemote, Download, Op, Upload
from syncd.engine.planner import plan
from syncd.engine.remote import state_from_entry
from syncd.engine.scanned import ScannedContent
from syncd.errors import AuthError, FatalError, RequestRejected, SyncdError, TransportError
from syncd.indexer.db import Index
from syncd.indexer.ignore import Ignore
from syncd.indexer.scanner import scan
from syncd.indexer.state import Block, FileState
from syncd.paths import parent_of
from syncd.status import SyncStatus
from syncd.transport.client import ServerClient
from syncd.transport.retry import Backoff

log = logging.getLogger("syncd.loop")
MAX_ROUNDS = 20
TREES = ("local", "remote", "base")
ERROR_RETRY = 30.0  # seconds before retrying after an unexpected error
QUOTA_EXCEEDED = 507  # the server's storage quota answer
QUOTA_RETRY = 60.0  # seconds between attempts while over quota
# A full plan reads whole trees only when more paths than this (or a quarter of them)
# may need something; otherwise it plans those paths as a partial plan would.
FULL_PLAN_PART = 1000
PATH_RETRY = 2.0  # first retry of a path whose op failed; doubles each time
PATH_RETRY_MAX = 300.0
MARKER_CHECK = 2.0  # seconds between checks that the folder is still there (one stat)
RELEASE_AFTER = 1000  # a cycle that looks at this many paths hands its garbage back
RELEASE_IDLE = 1.0  # seconds of idle after the last cycle before it does


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_TRIM = _malloc_trim()


def release_memory() -> None:
    """After a big cycle (the first sync of 100,000 files builds lists and JSON pages of
    them all), free its garbage and return the freed pages to the OS (glibc's
    malloc_trim), so the idle daemon's RSS is what it keeps, not what it once used."""
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)


Timer = Callable[[float, Callable[[], None]], None]  # run a callback once, after a delay


def _start_timer(delay: float, callback: Callable[[], None]) -> None:
    timer = threading.Timer(delay, callback)
    timer.daemon = True
    timer.start()


@dataclass(frozen=True)
class Event:
    kind: str  # "dirty" | "retry" | "rescan" | "remote" | "pause" | "resume" | "online" | "wake"
    paths: frozenset[str] = frozenset()


class SyncLoop:
    def __init__(
        self,
        *,
        root: Path,
        index: Index,
        fs: LocalFS,
        client: ServerClient,
        ns: int,
        device: str,
        params: ChunkParams,
        status: SyncStatus,
        chunk_fn: Callable | None = None,
        rescan_interval: float = 600.0,
        settle_delay: float = 1.0,
        clock: Callable[[], float] = time.time,
        today: Callable[[], date] = date.today,
        timer: Timer | None = None,
    ) -> None:
        self.root = root
        self.index = index
        self.fs = fs
        self.client = client
        self.ns = ns
        self.device = device
        self.params = params
        self.status = status
        self.chunk_fn = chunk_fn
        self.rescan_interval = rescan_interval
        self.settle_delay = settle_delay
        self.clock = clock
        self.today = today
        self.ignore = Ignore.from_root(root)
        self.events: queue.Queue[Event] = queue.Queue()
        self.scanned = ScannedContent()  # what this cycle's scan read, for its uploads
        self.executor = Executor(
            index,
            fs,
            client,
            ns,
            device,
            today=today,
            on_progress=status.count,
            scanned=self.scanned,
            clock=clock,
        )
        self._backoff = Backoff(base=0.5, cap=30.0)
        self._failures = 0
        self._failures_by_path: dict[str, int] = {}  # path -> failed attempts in a row
        self._retry_paths: set[str] = set()  # failed paths due for another attempt
        self._unreleased = 0  # paths looked at since memory was last handed back
        self._worked_at = 0.0  # clock time the last cycle ended
        self._retry_at = 0.0
        self._remote_pending = True
        self._replan = True  # plan on the first cycle and after any failed one
        self._dirty: set[str] | None = None  # paths to rescan; None: everything
        self._next_rescan: float | None = None  # set by the first pass
        self._timer = timer or _start_timer
        # News of the journal (the feed's wake-ups) counted as they come, and the count
        # at the last pull: unequal, the journal may hold entries the index lacks.
        self._remote_news = 0
        self._news_pulled = 0
        self.executor.lookahead = self._lookahead

    # -- events from other threads -----------------------------------------------------
    def post(self, kind: str, paths: frozenset[str] | set[str] = frozenset()) -> None:
        if kind in ("remote", "online"):
            self._remote_news += 1  # a lost update only costs a guess ahead (`_lookahead`)
        self.events.put(Event(kind, frozenset(paths)))

    # -- the loop ----------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Sync until `stop` is set (post any event to wake the loop after setting it)."""
        self.fs.cleanup_temp()
        self.executor.remove_stray_kept()
        while not stop.is_set():
            self._dirty = self._wait(self.tick(), self._dirty)

    def tick(self) -> float:
        """One pass of the loop without waiting: take the events posted so far, sync if
        something is due; the seconds until it is next worth a pass (unless an event
        comes first). `run` is this in a loop; a simulation drives it with a fake clock.
        """
        self._dirty = self._wait(0, self._dirty)
        now = self.clock()
        if self._next_rescan is None:
            self._next_rescan = now + self.rescan_interval
        if now >= self._next_rescan:
            self._dirty, self._next_rescan = None, now + self.rescan_interval
        if not self._folder_present():
            self._dirty, self._replan = None, True  # once it is back: rescan everything
            return MARKER_CHECK
        dirty = self._dirty
        pending = dirty is None or bool(dirty) or self._remote_pending
        if pending and not self.status.paused and now >= self._retry_at:
            self._remote_pending = False
            try:
                self._cycle(dirty)
                self._dirty = set()
                self._online()
                self.executor.tidy_kept()  # kept deleted files past their time
            except TransportError as exc:
                self._remote_pending = True
                self._retry_at = self._offline(exc)
            except Exception as exc:  # never die: report, then retry from a full plan
                if isinstance(exc, SyncdError):
                    log.error("sync stopped: %s", exc)
                else:
                    log.exception("sync cycle failed")
                self._replan = self._remote_pending = True
                self.status.update(error={"path": "", "reason": str(exc) or repr(exc)})
                self._retry_at = self.clock() + ERROR_RETRY
        # Here, not inside the cycle: its ops, trees and path sets are garbage only once
        # its frame is gone. Released inside it, an idle A kept ~50 MiB of freed heap
        # after uploading 100,000 files (128 MiB RSS; 78 after a trim). Only when
        # nothing else waits: in a burst, the next cycle would fault the same pages in
        # again (and a full collection is ~0.05 s of A's time each), so not before the
        # loop has been idle for RELEASE_IDLE: a device pulling a big first sync goes
        # idle for a moment between the other device's commits. On any pass that finds
        # it so, not only one that synced: a cycle that ended with an event queued (its
        # own writes' echo) goes idle on a pass after it.
        deadline = self._next_rescan
        if self._unreleased >= RELEASE_AFTER and self._idle_next():
            due = self._worked_at + RELEASE_IDLE
            if self.clock() >= due:
                self._unreleased = 0
                release_memory()
            else:
                deadline = min(deadline, due)
        dirty = self._dirty
        pending = dirty is None or bool(dirty) or self._remote_pending
        if pending and not self.status.paused:
            deadline = min(deadline, self._retry_at)
        deadline = min(deadline, self.clock() + MARKER_CHECK)
        return max(0.0, deadline - self.clock())

    def _idle_next(self) -> bool:
        """Whether the loop goes idle after this pass: no event posted, nothing dirty."""
        return self.events.empty() and not self._dirty and not self._remote_pending

    def _wait(self, timeout: float, dirty: set[str] | None) -> set[str] | None:
        try:
            event = self.events.get(timeout=timeout) if timeout > 0 else self.events.get_nowait()
        except queue.Empty:
            return dirty
        while True:
            dirty = self._take(event, dirty)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return dirty

    def _take(self, event: Event, dirty: set[str] | None) -> set[str] | None:
        if event.kind == "pause":
            self.status.update(paused=True)
        elif event.kind == "resume":  # a full pass follows: syncing until it is done
            self.status.update(paused=False, busy=True)
            self._retry_at = 0.0
            return None
        elif event.kind == "rescan":
            return None
        elif event.kind == "online":
            self._retry_at = 0.0
            self._remote_pending = True
        elif event.kind == "remote":
            self._remote_pending = True
        elif event.kind == "dirty" and dirty is not None:
            return dirty | set(event.paths)
        elif event.kind == "retry":  # plan these again even if nothing changed on disk
            self._retry_paths |= set(event.paths)
            return dirty if dirty is None else dirty | set(event.paths)
        return dirty

    # -- one cycle ---------------------------------------------------------------------
    def _cycle(self, dirty: set[str] | None) -> None:
        """Pull, scan, then plan and execute until nothing is left.

        Planning covers only the paths touched since the last plan (with their
        ancestors and subtrees), so a change costs the same in a folder of 100 or
        100,000 files. The first cycle, a full rescan, a resync and any cycle after a
        failed one plan over every path. A round that changed nothing ends the cycle
        only if the server had nothing new either: entries pulled after a round are
        always planned (in this cycle, or the next if the rounds ran out).
        """
        self.status.update(busy=True)
        worked = len(dirty) if dirty is not None else RELEASE_AFTER  # paths looked at
        try:
            self._check_marker()
            pulled = self._pull_remote()
            scanned = self._scan(None if dirty is None else {p for p in dirty if p})
            full = dirty is None or pulled is None or self._replan
            touched = (pulled or set()) | scanned | self._retry_paths
            self._retry_paths = set()
            if not full and not touched:
                return  # nothing new on either side
            self._replan = True  # until this cycle completes
            worked += RELEASE_AFTER if full else len(touched)
            for _ in range(MAX_ROUNDS):
                ops = self._plan(None if full else touched)
                if not ops:
                    break
                worked += len(ops)
                self._show_pending(ops)
                outcome = self.executor.run(ops)
                touched = {op.path for op in ops} | outcome.rescan | set(outcome.conflicts)
                if outcome.rescan:
                    touched |= self._scan(outcome.rescan)
                self._record(outcome, ops)  # after the rescan, which clears old problems
                pulled = self._pull_remote()
                full = pulled is None
                touched |= pulled or set()
                if not outcome.progress and pulled is not None and not pulled:
                    break  # nothing changed, nothing new from the server: done
            else:  # rounds used up with work left: the next pass goes on from there
                self._retry_paths |= touched
                self._remote_pending = True
            self._replan = False
            self.status.finish_cycle(self.clock())
        finally:
            self.status.update(busy=False)
            self.index.drop_caches()
            self.executor.drop_ahead()
            self.scanned.clear()
            self._unreleased += worked
            self._worked_at = self.clock()

    def _folder_present(self) -> bool:
        """False (and the status says why) while the folder's state dir is missing."""
        try:
            self._check_marker()
        except FatalError as exc:
            if self.status.error is None or self.status.error.get("reason") != str(exc):
                log.error("%s", exc)
                self.status.update(error={"path": "", "reason": str(exc)})
            return False
        return True

    def _check_marker(self) -> None:
        """An unmounted or replaced folder must not look like the user deleting it all."""
        if not self.fs.state_dir.is_dir():
            raise FatalError(
                f"{self.fs.state_dir} is gone: the sync folder looks unmounted or replaced;"
                " syncing is stopped until it is back"
            )

    def _plan(self, paths: set[str] | None) -> list[Op]:
        """Plan over the three trees (or the part `paths` touch), minus ignored paths.

        An ignored path is neither uploaded, deleted remotely (it vanishing from the
        local scan is not a deletion) nor downloaded: it stays as it is on each side.
        """
        if paths is None:  # a full plan: only where the trees may disagree, unless that
            unsettled = self.index.unsettled()  # is much of them (one read is cheaper then)
            if len(unsettled) <= max(FULL_PLAN_PART, self.index.count("base") // 4):
                paths = unsettled
        if paths is None:
            trees = [self.index.all(t) for t in TREES]
        else:
            wanted = self._related(paths)
            trees = [self.index.get_many(t, wanted) for t in TREES]
        ignored = {
            path
            for tree in trees
            for path, state in tree.items()
            if self.ignore.ignored(path, state.kind == "dir")
        }
        if ignored:
            trees = [{p: s for p, s in t.items() if p not in ignored} for t in trees]
        return plan(*trees, device=self.device, today=self.today())

    def _related(self, paths: set[str]) -> set[str]:
        """`paths`, their ancestors, and the subtrees of those that are (or were) folders."""
        wanted: set[str] = set()
        known = [self.index.kinds_many(t, paths) for t in TREES]
        for path in paths:
            up = path
            while up and up not in wanted:
                wanted.add(up)
                up = parent_of(up)
            kinds = {kind for kinds_of in known if (kind := kinds_of.get(path)) is not None}
            if "dir" in kinds or not kinds:
                for tree in TREES:
                    wanted.update(self.index.paths_under(tree, path))
        return wanted

    def _scan(self, only: set[str] | None) -> set[str]:
        """Rescan (everything, or `only`); the paths whose local state changed."""
        if only is not None and not only:
            return set()
        if only is None or ".syncignore" in only:
            self.ignore = Ignore.from_root(self.root)
        result = scan(
            self.root,
            self.index.all("local") if only is None else self.index.local_snapshot(),
            self.ignore,
            self.params,
            chunk_fn=self.chunk_fn or self._chunk_keeping,
            only=only,
        )
        with self.index.transaction():
            self.index.put_many("local", result.changed.values())
            self.index.delete_many("local", result.removed)
        touched = set(result.changed) | set(result.removed)
        problems = dict(self.status.problems)
        if only is None:
            problems = {}
        else:
            for path in only:
                problems.pop(path, None)
        problems.update(result.problems)
        self.status.update(problems=problems)
        if result.retry:  # still being written: look again once it has had time to settle
            retry = set(result.retry)
            self._timer(self.settle_delay, lambda: self.post("dirty", retry))
        return touched

    def _chunk_keeping(self, path: Path, params: ChunkParams) -> list[ChunkRef]:
        """The scan's chunker: a small file's bytes are kept for its upload."""
        refs, data = chunk_file_keeping(path, params, self.scanned.room())
        if data is not None and refs:
            self.scanned.keep(tuple([Block(r.id, r.length) for r in refs]), data)
        return refs

    def _pull_remote(self) -> set[str] | None:
        """Bring the remote tree to the journal's end: the paths it changed, or None
        after a full resync (everything may have changed)."""
        self._news_pulled = self._remote_news
        stored = self.index.get_meta("cursor")
        if stored is None:  # never synced: start from the current tree, not the history
            return self._resync()
        cursor, applied = int(stored), set()
        while True:
            try:
                page = self.client.changes(self.ns, cursor, limit=5000)
            except RequestRejected as exc:
                if exc.status == 410:
                    log.warning("the server's journal is behind our cursor: full resync")
                    return self._resync(forget_base=True)
                raise
            if page.entries:
                latest = {entry["path"]: state_from_entry(entry) for entry in page.entries}
                with self.index.transaction():
                    self.index.delete_many("remote", [p for p, s in latest.items() if s is None])
                    self.index.put_many("remote", [s for s in latest.values() if s is not None])
                    self.index.set_meta("cursor", str(page.cursor))
            applied.update(entry["path"] for entry in page.entries)
            cursor = page.cursor
            if not page.has_more:
                return applied

    def _lookahead(self) -> list[FileState]:
        """The remote states of the journal's entries past the last pull, for the
        executor to fetch ahead: read only, the index is left as it is (the next pull
        records them). Empty if nothing new was announced, or on any transport trouble."""
        stored = self.index.get_meta("cursor")
        if stored is None or self._remote_news == self._news_pulled:
            return []
        try:
            page = self.client.changes(self.ns, int(stored), limit=5000, retry=False)
        except TransportError as exc:
            log.debug("looking ahead in the journal failed: %s", exc)
            return []
        states = (state_from_entry(entry) for entry in page.entries)
        return [st for st in states if st is not None and not self.ignore.ignored(st.path, False)]

    def _resync(self, forget_base: bool = False) -> None:
        entries, cursor = self.client.tree(self.ns)
        states = [state_from_entry(entry) for entry in entries]
        with self.index.transaction():
            self.index.clear("remote")
            if forget_base:
                self.index.clear("base")
            self.index.put_many("remote", [st for st in states if st is not None])
            self.index.set_meta("cursor", str(cursor))
        self._pull_remote()  # entries committed while the tree was read
        return None

    # -- status ------------------------------------------------------------------------
    def _show_pending(self, ops: list[Op]) -> None:
        up = [op for op in ops if isinstance(op, Upload | DeleteRemote | Conflict)]
        down = [op for op in ops if isinstance(op, Download | DeleteLocal | Conflict)]
        self.status.plan(
            files_up=len(up),
            bytes_up=sum(op.local.size for op in up if isinstance(op, Upload)),
            files_down=len(down),
            bytes_down=sum(op.remote.size for op in down if isinstance(op, Download)),
        )

    def _retry_later(self, paths: set[str]) -> None:
        """Paths whose op failed (a folder we may not write, a full disk): look at them
        again after 2 s, doubling up to 5 min, instead of spinning or giving up."""
        by_delay: dict[float, set[str]] = {}
        for path in paths:
            attempts = self._failures_by_path.get(path, 0)
            self._failures_by_path[path] = attempts + 1
            delay = min(PATH_RETRY_MAX, PATH_RETRY * 2 ** min(attempts, 16))
            by_delay.setdefault(delay, set()).add(path)
        for delay, group in by_delay.items():
            self._timer(delay, lambda g=group: self.post("retry", g))

    def _record(self, outcome: Outcome, ops: list[Op]) -> None:
        for op in ops:
            if op.path not in outcome.problems:
                self._failures_by_path.pop(op.path, None)
        self.status.finished([c for op in ops if (c := _change(op, outcome)) is not None])
        if outcome.problems:
            self.status.update(problems={**self.status.problems, **outcome.problems})
            self._retry_later(set(outcome.problems))
        if outcome.conflicts:
            self.status.update(conflicts=[*self.status.conflicts, *outcome.conflicts])

    def _online(self) -> None:
        self._failures = 0
        if self.status.offline_since is not None or self.status.error is not None:
            log.info("back online")
        self.status.update(offline_since=None, next_retry=None, offline_reason=None, error=None)

    def _offline(self, exc: TransportError) -> float:
        now = self.clock()
        if isinstance(exc, AuthError):
            if self.status.error is None:  # once, not at every retry
                log.error("the server refused this device's token (%s); link it again", exc)
            self.status.update(error={"path": "", "reason": str(exc)})
            delay = 60.0
        elif isinstance(exc, RequestRejected) and exc.status == QUOTA_EXCEEDED:
            # The server answered: not offline. Files that fit were committed; the rest
            # wait for space (freed on the server, or a bigger quota).
            if self.status.error is None:
                log.warning("%s", exc)
            self.status.update(error={"path": "", "reason": str(exc)})
            delay = QUOTA_RETRY
        else:
            delay = self._backoff.delay(min(self._failures, 10))
            if self.status.offline_since is None:
                log.warning("server unreachable: %s", exc)
                self.status.update(offline_since=now)
        self._failures += 1
        self.status.update(next_retry=now + delay, offline_reason=str(exc))
        return now + delay


def _change(op: Op, outcome: Outcome) -> tuple[str, str, str, int] | None:
    """A completed op as (path, direction, action, size) for the status; None if it
    did not complete (it failed, or raced and is planned again) or is bookkeeping."""
    if op.path in outcome.problems:
        return None
    if isinstance(op, Conflict):
        return (op.path, "both", "conflict", op.remote.size)
    if op.path in outcome.rescan:
        return None
    if isinstance(op, Upload):
        return (op.path, "up", "uploaded", op.local.size)
    if isinstance(op, DeleteRemote):
        return (op.path, "up", "deleted", 0)
    if isinstance(op, Download):
        return (op.path, "down", "downloaded", op.remote.size)
    if isinstance(op, DeleteLocal):
        return (op.path, "down", "deleted", 0)
    return None
