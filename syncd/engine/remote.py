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


DELTA_MIN_BLOCKS = 8  # below this a block list is sent whole


def commit_op(
    state: FileState, parent_rev: int | None, op_id: str, base: FileState | None = None
) -> dict:
    """The commit request for a local file or directory state.

    With `base` (the file's last synced revision), a long block list is sent as runs of
    the base's blocks around the part that changed (`blocks_from`): a 1-byte edit to a
    100 MiB file then costs a few runs instead of ~1,300 ids.
    """
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
        runs = _runs(state.blocks, base)
        if runs is not None:
            op["blocks_from"] = {"rev": base.rev, "runs": runs}  # type: ignore[union-attr]
        else:
            op["blocks"] = [_block(b) for b in state.blocks]
    return op


def _block(b: Block) -> dict:
    return {"id": b.id, "size": b.size}


def _runs(blocks: tuple[Block, ...], base: FileState | None) -> list | None:
    """[[0, head]] + the changed blocks + [[start, tail]] against `base`, if it is shorter."""
    if base is None or base.kind != "file" or base.rev is None:
        return None
    old = base.blocks
    if len(blocks) < DELTA_MIN_BLOCKS or len(old) < DELTA_MIN_BLOCKS:
        return None
    head = 0
    limit = min(len(blocks), len(old))
    while head < limit and blocks[head] == old[head]:
        head += 1
    tail = 0
    while tail < limit - head and blocks[-1 - tail] == old[-1 - tail]:
        tail += 1
    changed = blocks[head : len(blocks) - tail]
    if len(changed) * 2 > len(blocks):
        return None  # mostly new: the plain list is as short
    runs: list = [[0, head]] if head else []
    runs += [_block(b) for b in changed]
    if tail:
        runs.append([len(old) - tail, tail])
    return runs


def delete_op(path: str, parent_rev: int, op_id: str) -> dict:
    return {"path": path, "action": "delete", "parent_rev": parent_rev, "op_id": op_id}
