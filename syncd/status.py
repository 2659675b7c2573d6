"""What the daemon is doing, readable from any thread (CLI, tray) as a plain dict."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class SyncStatus:
    folder: str = ""
    server: str = ""
    device: str = ""
    paused: bool = False
    busy: bool = False
    files_up: int = 0
    bytes_up: int = 0
    files_down: int = 0
    bytes_down: int = 0
    offline_since: float | None = None
    next_retry: float | None = None
    offline_reason: str | None = None
    error: dict | None = None  # {"path", "reason"}: the sync cannot go on until fixed
    problems: dict[str, str] = field(default_factory=dict)  # skipped paths
    last_sync: float | None = None
    conflicts: list[str] = field(default_factory=list)
    uploaded_bytes_total: int = 0  # chunk bytes sent since the daemon started
    downloaded_bytes_total: int = 0  # chunk bytes fetched from the server since start
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update(self, **changes: object) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(self, key, value)

    def count(self, direction: str, nbytes: int) -> None:
        """Record chunk bytes that crossed the wire ("up" or "down")."""
        with self._lock:
            if direction == "up":
                self.uploaded_bytes_total += nbytes
                self.bytes_up = max(0, self.bytes_up - nbytes)
            else:
                self.downloaded_bytes_total += nbytes
                self.bytes_down = max(0, self.bytes_down - nbytes)

    def state(self) -> str:
        if self.paused:
            return "paused"
        if self.error is not None:
            return "error"
        if self.offline_since is not None:
            return "offline"
        if self.busy or self.files_up or self.files_down:
            return "syncing"
        return "up to date"

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "state": self.state(),
                "folder": self.folder,
                "server": self.server,
                "device": self.device,
                "files_up": self.files_up,
                "bytes_up": self.bytes_up,
                "files_down": self.files_down,
                "bytes_down": self.bytes_down,
                "offline_since": self.offline_since,
                "next_retry": self.next_retry,
                "offline_reason": self.offline_reason,
                "error": self.error,
                "problems": [{"path": p, "reason": r} for p, r in sorted(self.problems.items())],
                "last_sync": self.last_sync,
                "uploaded_bytes_total": self.uploaded_bytes_total,
                "downloaded_bytes_total": self.downloaded_bytes_total,
                "now": time.time(),
            }
