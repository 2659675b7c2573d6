"""The planner: a pure function of the local, remote and base trees (D6).

Per path, "local changed" means the local state's content (kind, blocks, executable
bit) differs from the base, or one is present and the other not; "remote changed"
means the remote revision differs from the base's, or one is present and the other not.

| local    | remote   | decision                                                        |
|----------|----------|-----------------------------------------------------------------|
| same     | same     | nothing                                                         |
| changed  | same     | Upload (parent_rev = base rev) / DeleteRemote if deleted locally |
| same     | changed  | Download (if the local file still matches) / DeleteLocal        |
| changed  | changed  | same content or both deleted → SetBase (no transfer)            |
|          |          | deleted locally, edited remotely → Download (edit beats delete) |
|          |          | edited locally, deleted remotely → Upload as new (edit survives) |
|          |          | both edited differently → Conflict: remote keeps the name, the  |
|          |          | local copy moves aside as a conflicted copy and is uploaded     |

Folders: a remotely deleted folder whose local subtree holds anything that is not also
being deleted is recreated on the server (Upload) instead of deleted locally; a folder
replaced by a file remotely while its local subtree holds such things is a Conflict
(the local folder, contents and all, becomes the conflicted copy); a locally
deleted folder whose remote subtree has changes is recreated locally (Download) instead
of deleted on the server. A local file that replaced a folder while the server's folder
still holds entries this plan does not delete (another device added or edited them)
cannot be committed (the server keeps a tree): it moves aside as a conflicted copy
(MoveAside), and the folder comes back with those entries. Nothing a user wrote is
dropped.

Order: uploads (parents first), remote deletes (children first), uploads of files that
replace a folder (once its entries are deleted), downloads, conflicts and moves aside
(parents first), local deletes (children first), so a remote move can reuse the old
file's bytes before it goes, and new content is on the server before any delete is sent.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from datetime import date

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
from syncd.indexer.state import FileState

__all__ = ["plan"]


def _local_changed(local: FileState | None, base: FileState | None) -> bool:
    if local is None or base is None:
        return (local is None) != (base is None)
    return not base.same_content(local)


def _remote_changed(remote: FileState | None, base: FileState | None) -> bool:
    if remote is None or base is None:
        return (remote is None) != (base is None)
    return remote.rev != base.rev


def _decide(
    path: str, lo: FileState | None, re: FileState | None, ba: FileState | None
) -> Op | None:
    lc, rc = _local_changed(lo, ba), _remote_changed(re, ba)
    if not lc and not rc:
        return None
    if lc and not rc:
        if lo is None:
            assert ba is not None and ba.rev is not None
            return DeleteRemote(path, ba.rev, ba.kind)
        return Upload(path, lo, ba.rev if ba is not None else None)
    if rc and not lc:
        if re is None:
            assert lo is not None
            return DeleteLocal(path, lo)
        return Download(path, re, lo)
    # both changed
    if lo is None and re is None:
        return SetBase(path, None)
    if lo is None:
        assert re is not None
        return Download(path, re, None)
    if re is None:
        return Upload(path, lo, None)
    if lo.same_content(re):
        return SetBase(path, re)
    return Conflict(path, lo, re, ba)


def _depth(path: str) -> int:
    return path.count("/")


def plan(
    local: Mapping[str, FileState],
    remote: Mapping[str, FileState],
    base: Mapping[str, FileState],
    *,
    device: str,
    today: date,
) -> list[Op]:
    """The ops that make local and remote agree, in the order they must run."""
    del device, today  # conflict names are chosen at apply time, against the disk
    ops: dict[str, Op] = {}
    for path in set(local) | set(remote) | set(base):
        op = _decide(path, local.get(path), remote.get(path), base.get(path))
        if op is not None:
            ops[path] = op
    _keep_folders_with_survivors(ops, local, remote)
    _move_files_out_of_surviving_folders(ops, remote)
    uploads = sorted(
        (op for op in ops.values() if isinstance(op, Upload)),
        key=lambda o: (_depth(o.path), o.path),
    )
    # A file that replaced a folder can only be committed once the folder is empty.
    creates = [op for op in uploads if not _replaces_remote_folder(op, base)]
    file_over_folder = [op for op in uploads if _replaces_remote_folder(op, base)]
    remote_deletes = sorted(
        (op for op in ops.values() if isinstance(op, DeleteRemote)),
        key=lambda o: (-_depth(o.path), o.path),
    )
    downloads = sorted(
        (op for op in ops.values() if isinstance(op, Download | Conflict | MoveAside | SetBase)),
        key=lambda o: (_depth(o.path), o.path),
    )
    local_deletes = sorted(
        (op for op in ops.values() if isinstance(op, DeleteLocal)),
        key=lambda o: (-_depth(o.path), o.path),
    )
    # A folder that became a file can only be replaced once its contents are gone.
    folder_to_file = [op for op in downloads if _replaces_folder(op)]
    downloads = [op for op in downloads if not _replaces_folder(op)]
    return [
        *creates, *remote_deletes, *file_over_folder, *downloads, *local_deletes, *folder_to_file
    ]  # fmt: skip


def _replaces_remote_folder(op: Upload, base: Mapping[str, FileState]) -> bool:
    was = base.get(op.path)
    return op.local.kind == "file" and was is not None and was.kind == "dir"


def _replaces_folder(op: Op) -> bool:
    return (
        isinstance(op, Download)
        and op.remote.kind == "file"
        and op.expect is not None
        and op.expect.kind == "dir"
    )


def _under(sorted_paths: list[str], folder: str) -> list[str]:
    prefix = folder + "/"
    start = bisect_left(sorted_paths, prefix)
    end = bisect_left(sorted_paths, folder + "0")  # '0' follows '/' in code point order
    return sorted_paths[start:end]


def _keep_folders_with_survivors(
    ops: dict[str, Op], local: Mapping[str, FileState], remote: Mapping[str, FileState]
) -> None:
    """Never delete a folder, on either side, that still has to hold something."""
    local_paths, remote_paths = sorted(local), sorted(remote)
    for path, op in list(ops.items()):
        if isinstance(op, DeleteLocal) and op.expect.kind == "dir":
            inside = _under(local_paths, path)
            if any(not isinstance(ops.get(p), DeleteLocal) for p in inside):
                ops[path] = Upload(path, op.expect, None)
        elif _replaces_folder(op):  # a remote file where a local folder still holds more
            assert isinstance(op, Download) and op.expect is not None
            inside = _under(local_paths, path)
            if any(not isinstance(ops.get(p), DeleteLocal) for p in inside):
                ops[path] = Conflict(path, op.expect, op.remote, None)
        elif isinstance(op, DeleteRemote) and op.kind == "dir" and path in remote:
            inside = _under(remote_paths, path)
            if any(not isinstance(ops.get(p), DeleteRemote) for p in inside):
                ops[path] = Download(path, remote[path], None)


def _move_files_out_of_surviving_folders(
    ops: dict[str, Op], remote: Mapping[str, FileState]
) -> None:
    """A local file whose path holds remote entries that stay (not deleted by this plan)
    would be refused by the server: keep it as a conflicted copy instead."""
    remote_paths = sorted(remote)
    for path, op in list(ops.items()):
        if not (isinstance(op, Upload) and op.local.kind == "file"):
            continue
        inside = _under(remote_paths, path)
        if any(not isinstance(ops.get(p), DeleteRemote) for p in inside):
            ops[path] = MoveAside(path, op.local)
