"""Plan operations: what the executor must do to one path, in the order given."""

from __future__ import annotations

from dataclasses import dataclass

from syncd.indexer.state import FileState, Kind


@dataclass(frozen=True, slots=True)
class Upload:
    """Commit the local file or folder; parent_rev None = it must be new on the server."""

    path: str
    local: FileState
    parent_rev: int | None


@dataclass(frozen=True, slots=True)
class DeleteRemote:
    path: str
    parent_rev: int
    kind: Kind


@dataclass(frozen=True, slots=True)
class Download:
    """Write the remote file or folder, only if the local one still matches `expect`."""

    path: str
    remote: FileState
    expect: FileState | None


@dataclass(frozen=True, slots=True)
class DeleteLocal:
    """Remove the local file (if it still matches `expect`) or empty folder."""

    path: str
    expect: FileState


@dataclass(frozen=True, slots=True)
class Conflict:
    """Both sides changed: the remote keeps the name, the local moves to a conflicted copy."""

    path: str
    local: FileState
    remote: FileState
    base: FileState | None


@dataclass(frozen=True, slots=True)
class MoveAside:
    """The local file is in the way of remote content below its path (a folder there on
    the server): keep it as a conflicted copy, so the folder can come back."""

    path: str
    local: FileState


@dataclass(frozen=True, slots=True)
class SetBase:
    """Both sides already agree: record the new base (None: both deleted)."""

    path: str
    state: FileState | None


Op = Upload | DeleteRemote | Download | DeleteLocal | Conflict | MoveAside | SetBase
