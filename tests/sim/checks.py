"""The invariants checked once a simulated run has quiesced (docs/RELIABILITY.md).

1. every device's folder is identical to every other's: paths, folders, bytes, exec bit;
2. ... and to the server's current tree, read through the API (tree + chunk downloads);
3. no temp file is left in any device's `.syncd/tmp`;
4. no partial file is visible: every file in every folder holds a content a user wrote;
5. the server never stored a torn upload: every revision in its journal is a content a
   user wrote;
6. no write is lost: every content the ledger says is owed is in a current file (a
   conflicted copy is one) or in a revision of the server's history;
7. the scanners never committed a content nobody wrote (in-process runs, which see them);
8. conflicted copies are named `name (conflicted copy from DEVICE YYYY-MM-DD).ext`.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

from syncd.engine.conflicts import MARK
from syncd.transport.client import ServerClient
from tests.sim.model import Ledger, key_of
from tests.support.devices import snapshot

CONFLICT_NAME = re.compile(
    r"^(?P<stem>.*) \(conflicted copy from (?P<device>\w+) \d{4}-\d{2}-\d{2}( \d+)?\)"
    r"(?P<ext>\.[^./]*)?$"
)


def server_state(client: ServerClient, ns: int) -> tuple[dict[str, tuple], list[dict], dict]:
    """(the current tree in `snapshot` form, every journal entry, chunk data by id)."""
    entries: list[dict] = []
    cursor = 0
    while True:
        page = client.changes(ns, cursor, limit=5000)
        entries += page.entries
        cursor = page.cursor
        if not page.has_more:
            break
    current, _ = client.tree(ns)
    sizes = {b["id"]: b["size"] for e in entries for b in e["blocks"]}
    chunks = dict(client.get_chunks(ns, list(sizes), sizes)) if sizes else {}
    tree: dict[str, tuple] = {}
    for e in current:
        if e["deleted"]:
            continue
        if e["is_folder"]:
            tree[e["path"]] = ("dir",)
        else:
            data = b"".join(chunks[b["id"]] for b in e["blocks"])
            tree[e["path"]] = ("file", data, bool(e["mode"] & 0o100))
    return tree, entries, chunks


def check(
    folders: dict[str, Path], client: ServerClient, ns: int, ledger: Ledger, stats: Counter
) -> list[str]:
    """Every invariant; the list of violations (empty: all hold). Counts go to `stats`."""
    bad: list[str] = []
    trees = {name: snapshot(folder) for name, folder in folders.items()}
    names = list(trees)
    first = trees[names[0]]
    for name in names[1:]:
        stats["invariant_checks"] += 1
        if trees[name] != first:
            bad.append(f"folders differ: {names[0]} vs {name}: {_diff(first, trees[name])}")
    server_tree, history, chunks = server_state(client, ns)
    stats["invariant_checks"] += 1
    if server_tree != first:
        bad.append(f"server tree differs from {names[0]}: {_diff(server_tree, first)}")
    for name, folder in folders.items():
        stats["invariant_checks"] += 1
        tmp = folder / ".syncd" / "tmp"
        left = os.listdir(tmp) if tmp.is_dir() else []
        if left:
            bad.append(f"{name}: temp files left in .syncd/tmp: {left}")
    current: set[str] = set()
    for name, tree in trees.items():
        for path, item in tree.items():
            if item[0] != "file":
                continue
            key = key_of(item[1])
            current.add(key)
            stats["files_checked"] += 1
            if key not in ledger.ever:
                bad.append(f"{name}: {path} holds {len(item[1])} bytes nobody wrote (partial?)")
    stats["invariant_checks"] += 3
    revisions: set[str] = set()
    for e in history:
        if e["deleted"] or e["is_folder"]:
            continue
        data = b"".join(chunks[b["id"]] for b in e["blocks"])
        key = key_of(data)
        revisions.add(key)
        stats["revisions_checked"] += 1
        if key not in ledger.ever:
            bad.append(f"server rev {e['rev']} of {e['path']}: {len(data)} bytes nobody wrote")
    owed = ledger.owed()
    stats["owed_contents_checked"] += len(owed)
    for key in sorted(owed - current - revisions):
        how = ledger.engine_destroyed.get(key, "not seen replaced by the engine")
        bad.append(f"lost write: content {key} ({ledger.sizes.get(key)} bytes); {how}")
    stats["invariant_checks"] += 1
    if ledger.unknown_seen:
        bad.append(f"scanned contents nobody wrote: {ledger.unknown_seen[:5]}")
    stats["invariant_checks"] += 1
    for path in first:
        name = path.rpartition("/")[2]
        if MARK in name:
            stats["conflicted_copies"] += 1
            if not CONFLICT_NAME.match(name):
                bad.append(f"badly named conflicted copy: {path!r}")
    stats["invariant_checks"] += 1
    stats["contents_written"] += len(ledger.ever)
    stats["contents_seen_by_scanners"] += len(ledger.seen)
    stats["history_revisions"] += len(history)
    return bad


def _diff(a: dict[str, tuple], b: dict[str, tuple]) -> str:
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    changed = sorted(p for p in set(a) & set(b) if a[p] != b[p])
    parts = []
    if only_a:
        parts.append(f"only in the first: {only_a[:8]}")
    if only_b:
        parts.append(f"only in the second: {only_b[:8]}")
    for p in changed[:8]:
        parts.append(f"{p}: {_short(a[p])} vs {_short(b[p])}")
    return "; ".join(parts)


def _short(item: tuple) -> str:
    if item[0] == "dir":
        return "folder"
    return f"file {key_of(item[1])[:8]} ({len(item[1])} B{', exec' if item[2] else ''})"
