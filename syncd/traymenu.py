"""The tray's menu as data: a pure function of the daemon's status snapshot.

The tray (syncd/tray.py) turns these items into a pystray menu or a Tk popup, and runs
an item's `action` — a tuple such as ("pause",) or ("reveal", "docs/a.txt") — through
its actions object; nothing here draws or talks to the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncd.display import status_line

RECENT_SHOWN = 5
CONFLICTS_SHOWN = 10
MAX_LABEL = 48  # characters of a path in a menu

NOT_RUNNING = {"state": "not running"}


@dataclass(frozen=True)
class Item:
    text: str
    action: tuple[str, ...] | None = None
    enabled: bool = True
    children: tuple[Item, ...] = ()

    @property
    def separator(self) -> bool:
        return self.text == "-"


SEPARATOR = Item("-", enabled=False)
ARROWS = {"up": "↑", "down": "↓", "both": "⇅"}


def shorten(path: str, limit: int = MAX_LABEL) -> str:
    """`path` cut in the middle to at most `limit` characters, the file name kept whole
    when it fits."""
    if len(path) <= limit:
        return path
    head, _, name = path.rpartition("/")
    if head and len(name) + 2 <= limit:
        keep = limit - len(name) - 2
        return f"{head[:keep]}…/{name}" if keep > 0 else f"…/{name}"
    half = (limit - 1) // 2
    return f"{path[:half]}…{path[len(path) - (limit - 1 - half) :]}"


def recent_paths(snap: dict, n: int = RECENT_SHOWN) -> list[dict]:
    """The last `n` changed paths, newest first, each path once."""
    seen: set[str] = set()
    out = []
    for change in snap.get("recent") or []:
        path = change.get("path")
        if not path or path in seen:
            continue
        seen.add(path)
        out.append(change)
        if len(out) == n:
            break
    return out


def _recent_menu(snap: dict) -> Item:
    changes = recent_paths(snap)
    if not changes:
        return Item("Recent changes", children=(Item("Nothing synced yet", enabled=False),))
    items = tuple(
        Item(
            f"{ARROWS.get(c.get('direction', ''), '')} {shorten(c['path'])}".strip(),
            ("reveal", c["path"]),
        )
        for c in changes
    )
    return Item("Recent changes", children=items)


def _conflicts_menu(snap: dict) -> Item | None:
    count = int(snap.get("conflict_count") or 0)
    if not count:
        return None
    paths = list(snap.get("conflicts") or [])[:CONFLICTS_SHOWN]
    items = [Item(shorten(p), ("reveal", p)) for p in paths]
    if count > len(paths):
        items.append(Item(f"… and {count - len(paths)} more", enabled=False))
    return Item(f"Conflicts ({count})", children=tuple(items))


def menu_model(snap: dict, now: float) -> tuple[Item, ...]:
    """The whole menu for this snapshot (NOT_RUNNING when the daemon does not answer)."""
    head = Item(status_line(snap, now), enabled=False)
    if snap.get("state") == "not running":
        return (
            head,
            Item("Start syncd", ("start",)),
            SEPARATOR,
            Item("Open folder", ("open_folder",), enabled=bool(snap.get("folder"))),
            Item("Open log", ("open_log",)),
            SEPARATOR,
            Item("Close tray", ("close",)),
        )
    paused = snap.get("state") == "paused"
    items = [
        head,
        SEPARATOR,
        Item("Open folder", ("open_folder",)),
        _recent_menu(snap),
        Item("Resume syncing", ("resume",)) if paused else Item("Pause syncing", ("pause",)),
    ]
    conflicts = _conflicts_menu(snap)
    if conflicts is not None:
        items.append(conflicts)
    items += [
        Item("Open log", ("open_log",)),
        SEPARATOR,
        Item("Quit syncd", ("quit",)),
        Item("Close tray", ("close",)),
    ]
    return tuple(items)


def tooltip(snap: dict, now: float) -> str:
    """The icon's title (hover text): "syncd — <status line>"."""
    return f"syncd — {status_line(snap, now)}"
