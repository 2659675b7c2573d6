"""The journal's rules, free of any database: parent_rev checks, new entries, sizes.

Every metastore implementation reads the current entry and the namespace's chunk sizes
its own way, then lets these functions decide, so SQLite and PostgreSQL cannot drift.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

from syncd.paths import parent_of
from syncd.server.metastore.base import CommitOp, CommitResult, Entry, InvalidCommit

# Column order of a journal row, shared by every SQL implementation.
ENTRY_COLUMNS = (
    "ns",
    "seq",
    "path",
    "kind",
    "deleted",
    "size",
    "mode",
    "mtime_ns",
    "blocks",
    "user",
    "device",
    "op_id",
    "server_time",
    "prev_rev",
)


def refusal(op: CommitOp, current: Entry | None) -> CommitResult | None:
    """The conflict `op` runs into against the path's current entry, or None if it applies.

    A delete needs the live entry's revision; a write over a live entry needs its
    revision; a write where nothing lives needs None/0 or the deletion's revision.
    """
    live = current if current is not None and not current.deleted else None
    if op.action == "delete":
        if live is None or op.parent_rev != live.rev:
            return CommitResult("conflict", current=current)
    elif live is not None:
        if op.parent_rev != live.rev:
            return CommitResult("conflict", current=current)
    elif op.parent_rev not in (None, 0) and (current is None or op.parent_rev != current.rev):
        return CommitResult("conflict", current=current)
    return None


def apply_all(
    seq: int, ops: Sequence[CommitOp], apply: Callable[[int, CommitOp], CommitResult]
) -> tuple[list[CommitResult], int]:
    """Each op in order through `apply(seq so far, op)`; (the results, the new seq)."""
    results = []
    for op in ops:
        result = apply(seq, op)
        if result.entry is not None and not result.replayed:
            seq = result.entry.seq
        results.append(result)
    return results, seq


Lookup = Callable[[str], Entry | None]


def in_the_way(op: CommitOp, current_of: Lookup, first_below: Lookup) -> CommitResult | None:
    """The conflict of a write that would break the tree, or None.

    The live entries always form a tree: nothing may be written below a live file, and
    a file may not be written where live entries lie below its path. `current_of(path)`
    is a path's current entry, `first_below(path)` any live entry strictly below it.
    """
    if op.action == "delete":
        return None
    folder = parent_of(op.path)
    while folder:
        above = current_of(folder)
        if above is not None and not above.deleted and above.kind == "file":
            return CommitResult("conflict", current=above)
        folder = parent_of(folder)
    if op.action == "file":
        below = first_below(op.path)
        if below is not None:
            return CommitResult("conflict", current=below)
    return None


def vet(
    op: CommitOp,
    current: Entry | None,
    owned: Callable[[list[str]], Mapping[str, int]],
    current_of: Lookup,
    first_below: Lookup,
) -> CommitResult | None:
    """Why `op` cannot be written (a conflict, missing chunks), or None if it can.

    `owned(ids)` gives the sizes of those chunks the namespace owns; wrong sizes raise
    InvalidCommit. `current_of` and `first_below` are in_the_way's lookups.
    """
    refused = refusal(op, current) or in_the_way(op, current_of, first_below)
    if refused is not None or op.action != "file":
        return refused
    ids = list(dict.fromkeys(b for b, _ in op.blocks))
    sizes = owned(ids)
    missing = [i for i in ids if i not in sizes]
    if missing:
        return CommitResult("missing", missing=tuple(missing))
    check_sizes(op, sizes)
    return None


def check_sizes(op: CommitOp, sizes: Mapping[str, int]) -> None:
    """Each block's size must be the stored chunk's, and they must add up to the file's."""
    for chunk_id, size in op.blocks:
        if sizes.get(chunk_id) != size:
            raise InvalidCommit(
                f"{op.path}: chunk {chunk_id} has size {sizes.get(chunk_id)}, not {size}"
            )
    total = sum(s for _, s in op.blocks)
    if total != op.size:
        raise InvalidCommit(f"{op.path}: size {op.size} but its chunks add up to {total}")


def new_entry(
    ns: int, seq: int, op: CommitOp, current: Entry | None, user: str, device: str, now: float
) -> Entry:
    """The journal entry `op` writes at `seq` (refusal() and the chunk checks passed)."""
    kind = "dir" if op.action == "dir" else "file"
    size, mode, mtime_ns = op.size, op.mode, op.mtime_ns
    blocks = op.blocks if op.action == "file" else ()
    if op.action == "dir":
        size = 0
    elif op.action == "delete":
        assert current is not None
        kind, size, mode, mtime_ns = current.kind, 0, current.mode, current.mtime_ns
    return Entry(
        ns=ns,
        seq=seq,
        path=op.path,
        kind=kind,  # type: ignore[arg-type]
        deleted=op.action == "delete",
        size=size,
        mode=mode,
        mtime_ns=mtime_ns,
        blocks=blocks,
        user=user,
        device=device,
        op_id=op.op_id,
        server_time=now,
        prev_rev=current.rev if current is not None else None,
    )


def blocks_text(blocks: Sequence[tuple[str, int]]) -> str:
    return json.dumps([list(b) for b in blocks], separators=(",", ":"))


def entry_row(entry: Entry) -> tuple:
    """The entry as a row in ENTRY_COLUMNS order."""
    return (
        entry.ns,
        entry.seq,
        entry.path,
        entry.kind,
        entry.deleted,
        entry.size,
        entry.mode,
        entry.mtime_ns,
        blocks_text(entry.blocks),
        entry.user,
        entry.device,
        entry.op_id,
        entry.server_time,
        entry.prev_rev,
    )


def row_entry(row: Sequence) -> Entry:
    """A row in ENTRY_COLUMNS order back to an Entry."""
    ns, seq, path, kind, deleted, size, mode, mtime_ns, blocks, user, device, op_id, t, prev = row
    return Entry(
        ns=ns,
        seq=seq,
        path=path,
        kind=kind,
        deleted=bool(deleted),
        size=size,
        mode=mode,
        mtime_ns=mtime_ns,
        blocks=tuple((b, s) for b, s in json.loads(blocks)),
        user=user,
        device=device,
        op_id=op_id,
        server_time=t,
        prev_rev=prev,
    )


def columns(alias: str = "") -> str:
    """ENTRY_COLUMNS for a SELECT or INSERT, quoted ("user" is reserved in PostgreSQL)."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f'{prefix}"{c}"' for c in ENTRY_COLUMNS)
