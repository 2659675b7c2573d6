"""The client daemon: wires watcher, change feed, sync loop and control socket together.

Threads: the sync loop (the only one writing the index and the folder), the watcher
and the change feed (both only post events), the control socket (answers from the
status snapshot, posts pause/resume, and asks the server for ls/history/restore) and
the desktop notifier (turns status changes into notifications).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from syncd.chunker import ChunkParams
from syncd.control import ControlServer
from syncd.credentials import load_token
from syncd.engine.conflicts import MARK, is_conflicted_copy
from syncd.engine.localfs import LocalFS
from syncd.engine.loop import SyncLoop
from syncd.errors import SyncdError, TransportError
from syncd.home import ClientHome
from syncd.indexer.db import Index
from syncd.indexer.ignore import STATE_DIR, Ignore
from syncd.notifications import DesktopNotices, StatusNotifier
from syncd.paths import validate_path
from syncd.status import SyncStatus
from syncd.transport.client import ServerClient
from syncd.transport.feed import ChangeFeed
from syncd.watcher import Watcher

log = logging.getLogger("syncd.daemon")
# An editor's save dance (temp write, rename, delete) completes within milliseconds;
# 50 ms of quiet coalesces it while keeping propagation well under a second.
WATCH_QUIET = 0.05
WATCH_MAX_DELAY = 2.0
# In a long burst (a folder copied in), this many files closed after writing go out
# before the burst is over, so the upload starts while the rest are still written.
WATCH_BURST = 200
MAX_WAIT = 30.0  # seconds a `wait` request may block
MAX_LISTED_CONFLICTS = 100  # conflicted copies listed in the status (all are counted)


class Daemon:
    def __init__(self, home: ClientHome, stop: threading.Event) -> None:
        self.home = home
        self.stop = stop
        cfg = home.load_config()
        self.cfg = cfg
        token = load_token(home, cfg)
        self.root = Path(cfg.folder)
        if not self.root.is_dir():
            raise SyncdError(f"the sync folder {self.root} does not exist")
        self.index = Index.open(home.index_path)
        self._check_folder()
        self.client = ServerClient(cfg.server_url, token, ca=cfg.ca)
        self.feed_client = ServerClient(cfg.server_url, token, ca=cfg.ca)
        self.status = SyncStatus(
            folder=str(self.root),
            server=cfg.server_url,
            device=cfg.device,
            initial=self.index.get_meta("cursor") is None,  # never synced: the initial sync
        )
        self._reader = Index.open(home.index_path)  # control queries; the loop owns `index`
        self._reader_lock = threading.Lock()
        self._conflict_cache: tuple[object, list[str]] | None = None
        self.notices = DesktopNotices()
        self.notifier = StatusNotifier(self._status, self.status.wait_change, self.notices)
        self.loop = SyncLoop(
            root=self.root,
            index=self.index,
            fs=LocalFS(self.root, self.root / STATE_DIR),
            client=self.client,
            ns=cfg.namespace,
            device=cfg.device,
            params=ChunkParams.from_dict(cfg.chunking),
            status=self.status,
        )
        cursor = int(self.index.get_meta("cursor") or 0)  # the feed only wakes the loop
        self.feed = ChangeFeed(
            self.feed_client,
            cfg.namespace,
            cursor,
            on_page=lambda _page: self.loop.post("online"),
            on_error=self._feed_error,
            peek=True,  # the loop pulls the entries: fetch each once, not twice
        )
        self.watcher = Watcher(
            self.root,
            on_batch=lambda paths: self.loop.post("dirty", set(paths)),
            on_overflow=lambda: self.loop.post("rescan"),
            ignore=Ignore.from_root(self.root),
            quiet=WATCH_QUIET,
            max_delay=WATCH_MAX_DELAY,
            burst=WATCH_BURST,
        )
        self.control = ControlServer(home.socket_path, self.handle)

    def _check_folder(self) -> None:
        """Refuse to sync a folder that lost its marker: unmounted or replaced, its
        emptiness must not be taken for the user deleting everything (as Syncthing's
        .stfolder)."""
        marker = self.root / STATE_DIR
        if marker.is_dir():
            return
        if not (self.index.is_empty("local") and self.index.is_empty("base")):
            self.index.close()
            raise SyncdError(
                f"{marker} is missing: the sync folder {self.root} looks unmounted or replaced."
                f" If you really want to start over, run: syncd link again"
            )
        marker.mkdir(mode=0o700)

    def _feed_error(self, exc: TransportError, delay: float) -> None:
        log.info("change feed: %s (retry in %.1fs)", exc, delay)
        self.loop.post("remote")

    def run(self) -> None:
        self.control.start()
        self.notifier.start()
        self.watcher.start()
        self.feed.start()
        waker = threading.Thread(
            target=lambda: (self.stop.wait(), self.loop.post("wake")), daemon=True
        )
        waker.start()
        log.info("syncing %s with %s as %s", self.root, self.cfg.server_url, self.cfg.device)
        try:
            self.loop.run(self.stop)
        finally:
            self.feed.stop()
            self.watcher.stop()
            self.notifier.stop()
            self.control.close()
            self.client.close()
            self.index.close()
            with self._reader_lock:
                self._reader.close()
            log.info("stopped")

    # -- control socket ----------------------------------------------------------------
    def handle(self, cmd: str, args: dict) -> dict:
        ns = self.cfg.namespace
        if cmd == "status":
            return self._status()
        if cmd == "wait":  # long poll: answer once the status changed (or at the timeout)
            since = int(args.get("since", -1))
            self.status.wait_change(since, min(MAX_WAIT, float(args.get("seconds", 10.0))))
            return self._status()
        if cmd == "pause":
            self.loop.post(cmd)
            self.status.update(paused=True)
            return {}
        if cmd == "resume":  # syncing from now until the rescan it asks for is done
            self.status.update(paused=False, busy=True)
            self.loop.post(cmd)
            return {}
        if cmd == "stop":
            self.stop.set()
            return {}
        if cmd == "ls":
            path = validate_path(args.get("path") or "", allow_root=True)
            return {"entries": self.client.list_folder(ns, path)}
        if cmd == "history":
            return {"entries": self.client.history(ns, validate_path(args.get("path")))}
        if cmd == "restore":
            return {"entry": self._restore(validate_path(args.get("path")), args.get("rev"))}
        if cmd == "conflicts":
            return {"paths": self._conflicts()}
        if cmd == "devices":
            return {"devices": self.client.devices()}
        if cmd == "revoke":
            self.client.revoke(int(args["id"]))
            return {}
        raise SyncdError(f"unknown command {cmd!r}")

    def _restore(self, path: str, rev: int | None) -> dict:
        history = self.client.history(self.cfg.namespace, path)
        if rev is None:
            # the newest revision with content that is not the current one
            current = history[0]["rev"] if history else None
            older = [e for e in history if not e["deleted"] and e["rev"] != current]
            if not history[0]["deleted"] and not older:
                raise SyncdError(f"{path} has no earlier revision to restore")
            candidates = (
                older if not history[0]["deleted"] else [e for e in history if not e["deleted"]]
            )
            if not candidates:
                raise SyncdError(f"{path} has no revision with content")
            rev = candidates[0]["rev"]
        entry = self.client.restore(self.cfg.namespace, path, int(rev))
        self.loop.post("remote")
        return entry

    def _status(self) -> dict:
        snap = self.status.snapshot()
        conflicts = self._cached_conflicts((snap["last_sync"], len(snap["conflicts_made"])))
        return {
            **snap,
            "conflict_count": len(conflicts),
            "conflicts": conflicts[:MAX_LISTED_CONFLICTS],
            "log": str(self.home.log_path),
            "notifications": self.notices.state(),
            "chunk_avg": self.cfg.chunking.get("avg"),
        }

    def _cached_conflicts(self, key: object) -> list[str]:
        """Conflicted copies in the folder, read again only after a sync cycle or a new
        conflict (the tray asks on every status change)."""
        cached = self._conflict_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        paths = self._conflicts()
        self._conflict_cache = (key, paths)
        return paths

    def _conflicts(self) -> list[str]:
        with self._reader_lock:
            found = self._reader.paths_containing("local", MARK)
        return [p for p in found if is_conflicted_copy(p)]


def run_daemon(home: ClientHome, stop_event: threading.Event) -> None:
    """Run until `stop_event` is set (by a signal or the control socket's `stop`)."""
    Daemon(home, stop_event).run()
