"""Conversions between the server's journal entries and the client's FileState."""

from __future__ import annotations

from syncd.indexer.state import Block, FileState


def state_from_entry(entry: dict) -> FileState | None:
    """The remote state an entry leaves at its path; None for a deletion."""
    if entry["deleted"]:
        return None
    return FileState(
        path=entry["path"],
        kind="dir" if entry["is_folder"] else "file",
        size=entry["size"],
        mode=entry["mode"],
        mtime_ns=entry["mtime_ns"],
        blocks=tuple(Block(b["id"], b["size"]) for b in entry["blocks"]),
        rev=entry["rev"],
    )


def commit_op(state: FileState, parent_rev: int | None, op_id: str) -> dict:
    """The commit request for a local file or directory state."""
    op: dict = {
        "path": state.path,
        "action": state.kind,
        "parent_rev": parent_rev,
        "mode": state.mode & 0o7777,
        "mtime_ns": state.mtime_ns,
        "op_id": op_id,
    }
    if state.kind == "file":
        op["size"] = state.size
        op["blocks"] = [{"id": b.id, "size": b.size} for b in state.blocks]
    return op


def delete_op(path: str, parent_rev: int, op_id: str) -> dict:
    return {"path": path, "action": "delete", "parent_rev": parent_rev, "op_id": op_id}
