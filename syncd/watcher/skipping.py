"""A watchdog observer that puts no watch on one folder of the tree (inotify, Linux).

watchdog watches a tree with one inotify watch per folder and cannot leave a folder
out. The client's state folder `<root>/.syncd` holds the index (SQLite: every page it
writes is an IN_MODIFY) and the staged downloads (each one a create, a write, two
attribute changes, a close and a move), so a download of 2,000 files made some 15,000
events there. watchdog's thread decoded each one in Python, and paired every move by
scanning its queue, only for the Watcher to drop them all: in a profile of scenario 5
of `bench.peers`, 23% of B's samples were in that code (5% after). Here the one
method of watchdog's watch group that adds a watch skips the state folder and all of
its subfolders (at start, when one is created, when the watches are rebuilt after an
overflow), so the kernel never reports what happens in there.

This leans on watchdog's inotify internals (`InotifyWatchGroup._add_callback` and how
`InotifyEmitter` builds its group). With any other layout, or another platform,
`observer()` returns watchdog's own `Observer`, and the Watcher's filter drops those
events as before: slower, never wrong.
"""

from __future__ import annotations

import inspect
import logging
import os
from typing import TYPE_CHECKING

from watchdog.observers import Observer

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

log = logging.getLogger("syncd.watcher")

_GROUP_FIELDS = {"path", "event_mask", "is_recursive", "follow_symlink"}


def observer(skip: str) -> BaseObserver:
    """An observer whose recursive watches leave out `skip` (an absolute path) and all
    below it, where watchdog's inotify layout allows; else watchdog's `Observer`."""
    made = _skipping_class(os.fsencode(skip))
    return made() if made is not None else Observer()


def _skipping_class(skip: bytes) -> type[BaseObserver] | None:
    try:
        from watchdog.observers import inotify
    except ImportError:  # not Linux
        return None
    group = getattr(inotify, "InotifyWatchGroup", None)
    emitter = getattr(inotify, "InotifyEmitter", None)
    base = getattr(inotify, "InotifyObserver", None)
    if (
        group is None
        or emitter is None
        or base is None
        or Observer is not base
        or not callable(getattr(group, "_add_callback", None))
        or not callable(getattr(emitter, "get_event_mask_from_filter", None))
        or not set(inspect.signature(group).parameters) >= _GROUP_FIELDS
    ):
        log.debug("unknown watchdog inotify layout: the state folder is watched too")
        return None
    below = skip + b"/"

    class SkippingGroup(group):  # type: ignore[misc, valid-type]
        def _add_callback(self, path: bytes) -> None:
            if path == skip or path.startswith(below):
                return
            super()._add_callback(path)

    class SkippingEmitter(emitter):  # type: ignore[misc, valid-type]
        def on_thread_start(self) -> None:
            self._inotify = SkippingGroup(
                self._inotify_fd,
                os.fsencode(self.watch.path),
                is_recursive=self.watch.is_recursive,
                event_mask=self.get_event_mask_from_filter(),
                follow_symlink=self.watch.follow_symlink,
            )

    class SkippingObserver(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self._emitter_class = SkippingEmitter

    return SkippingObserver
