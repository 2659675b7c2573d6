"""Names for conflicted copies: `name (conflicted copy from DEVICE YYYY-MM-DD).ext`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from syncd.paths import MAX_NAME_BYTES, parent_of

MARK = " (conflicted copy from "


def _split(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    if dot and stem:
        return stem, "." + ext
    return name, ""


def _fit(stem: str, suffix: str) -> str:
    """Truncate the stem (never the suffix) so the name stays within MAX_NAME_BYTES."""
    budget = MAX_NAME_BYTES - len(suffix.encode())
    while len(stem.encode()) > budget:
        stem = stem[:-1]
    return stem + suffix


def conflict_name(path: str, device: str, today: date, taken: Callable[[str], bool]) -> str:
    """A free sibling path for the local copy of a conflicted `path`."""
    folder = parent_of(path)
    stem, ext = _split(path.rpartition("/")[2])
    safe_device = "".join(c for c in device if c.isprintable() and c not in "/\\") or "device"
    label = f"{MARK}{safe_device} {today.isoformat()})"
    n = 1
    while True:
        suffix = label if n == 1 else f"{label[:-1]} {n})"
        name = _fit(stem, suffix + ext)
        candidate = f"{folder}/{name}" if folder else name
        if not taken(candidate):
            return candidate
        n += 1


def is_conflicted_copy(path: str) -> bool:
    return MARK in path.rpartition("/")[2]
