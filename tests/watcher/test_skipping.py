"""The observer that leaves the state folder unwatched, on real temp folders."""

from __future__ import annotations

import os
import queue
import sys
import time
from pathlib import Path

import pytest
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from syncd.watcher import skipping

TIMEOUT = 15.0
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify only")


class Events(FileSystemEventHandler):
    def __init__(self) -> None:
        self.q: queue.Queue[FileSystemEvent] = queue.Queue()

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.q.put(event)

    def until(self, path: Path) -> list[FileSystemEvent]:
        """Every event up to the first one about `path` (inotify keeps their order)."""
        seen: list[FileSystemEvent] = []
        deadline = time.monotonic() + TIMEOUT
        while True:
            event = self.q.get(timeout=max(0.0, deadline - time.monotonic()))
            seen.append(event)
            if os.fsdecode(event.src_path) == str(path):
                return seen


def _inotify_watches() -> int:
    """Inotify watches this process holds, as the kernel lists them."""
    count = 0
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            text = Path(f"/proc/self/fdinfo/{fd}").read_text()
        except OSError:
            continue
        count += sum(line.startswith("inotify wd:") for line in text.splitlines())
    return count


@linux
def test_nothing_in_the_skipped_folder_is_watched_or_reported(tmp_path: Path):
    state = tmp_path / ".syncd"
    (state / "tmp").mkdir(parents=True)
    (tmp_path / "sub").mkdir()
    events = Events()
    before = _inotify_watches()
    observer = skipping.observer(str(state))
    assert type(observer) is not Observer  # this watchdog's layout is the known one
    observer.schedule(events, str(tmp_path), recursive=True)
    observer.start()
    try:
        assert _inotify_watches() - before == 2  # the root and sub/, not .syncd nor tmp/
        (state / "index.db").write_bytes(b"x" * 10_000)
        (state / "tmp" / "dl-1").write_bytes(b"staged")
        (state / "later").mkdir()  # made after the start: still not watched
        (state / "later" / "f").write_bytes(b"y")
        os.rename(state / "tmp" / "dl-1", tmp_path / "sub" / "placed.txt")
        (tmp_path / "sentinel").write_bytes(b"z")
        seen = events.until(tmp_path / "sentinel")
        assert _inotify_watches() - before == 2
    finally:
        observer.stop()
        observer.join(TIMEOUT)
    paths = {os.fsdecode(e.src_path) for e in seen}
    assert not [p for p in paths if p.startswith(str(state))]
    placed = str(tmp_path / "sub" / "placed.txt")
    assert any(e.event_type == "created" and os.fsdecode(e.src_path) == placed for e in seen)


@linux
def test_an_unknown_watchdog_layout_falls_back_to_its_own_observer(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(skipping, "_GROUP_FIELDS", {"path", "a_field_it_no_longer_has"})
    observer = skipping.observer(str(tmp_path / ".syncd"))
    assert type(observer) is Observer
    events = Events()
    observer.schedule(events, str(tmp_path), recursive=True)
    observer.start()
    try:
        (tmp_path / "f").write_bytes(b"x")
        assert events.until(tmp_path / "f")
    finally:
        observer.stop()
        observer.join(TIMEOUT)
