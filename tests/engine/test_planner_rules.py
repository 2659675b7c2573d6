"""The planner's rules, one table row each, and properties over random scenarios."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.engine.ops import Conflict, DeleteLocal, DeleteRemote, Download, SetBase, Upload
from syncd.engine.planner import plan
from syncd.indexer.state import Block, FileState

TODAY = date(2026, 11, 25)


def f(path: str, content: str = "x", rev: int | None = None, mode: int = 0o644) -> FileState:
    return FileState(path, "file", len(content), mode, 0, (Block(content, len(content)),), rev)


def d(path: str, rev: int | None = None) -> FileState:
    return FileState(path, "dir", rev=rev)


def run(local, remote, base):
    as_map = lambda states: {s.path: s for s in states}  # noqa: E731
    return plan(as_map(local), as_map(remote), as_map(base), device="dev", today=TODAY)


@pytest.mark.parametrize(
    ("local", "remote", "base", "expected"),
    [
        # nothing changed
        ([f("a")], [f("a", rev=1)], [f("a", rev=1)], []),
        # local only
        ([f("a", "new")], [f("a", rev=1)], [f("a", rev=1)], [Upload("a", f("a", "new"), 1)]),
        ([f("a")], [], [], [Upload("a", f("a"), None)]),
        ([], [f("a", rev=1)], [f("a", rev=1)], [DeleteRemote("a", 1, "file")]),
        ([f("a", mode=0o755)], [f("a", rev=1)], [f("a", rev=1)], [Upload("a", f("a", mode=0o755), 1)]),  # noqa: E501
        # remote only
        ([f("a")], [f("a", "v2", rev=2)], [f("a", rev=1)], [Download("a", f("a", "v2", rev=2), f("a"))]),  # noqa: E501
        ([], [f("a", rev=1)], [], [Download("a", f("a", rev=1), None)]),
        ([f("a")], [], [f("a", rev=1)], [DeleteLocal("a", f("a"))]),
        # both changed
        ([f("a", "same")], [f("a", "same", rev=2)], [f("a", rev=1)], [SetBase("a", f("a", "same", rev=2))]),  # noqa: E501
        ([], [], [f("a", rev=1)], [SetBase("a", None)]),
        ([], [f("a", "edit", rev=2)], [f("a", rev=1)], [Download("a", f("a", "edit", rev=2), None)]),  # noqa: E501
        ([f("a", "edit")], [], [f("a", rev=1)], [Upload("a", f("a", "edit"), None)]),
        (
            [f("a", "mine")],
            [f("a", "theirs", rev=2)],
            [f("a", rev=1)],
            [Conflict("a", f("a", "mine"), f("a", "theirs", rev=2), f("a", rev=1))],
        ),
        ([d("a")], [f("a", rev=2)], [], [Conflict("a", d("a"), f("a", rev=2), None)]),
        ([d("a")], [d("a", rev=3)], [], [SetBase("a", d("a", rev=3))]),
    ],
)  # fmt: skip
def test_rule(local, remote, base, expected):
    assert run(local, remote, base) == expected


def test_remote_deleted_folder_with_new_local_child_is_recreated_not_deleted():
    ops = run([d("d"), f("d/new")], [], [d("d", rev=1)])
    assert ops == [Upload("d", d("d"), None), Upload("d/new", f("d/new"), None)]


def test_locally_deleted_folder_with_remote_changes_is_recreated_locally():
    ops = run(
        [],
        [d("d", rev=1), f("d/x", "edited", rev=5)],
        [d("d", rev=1), f("d/x", rev=2)],
    )
    assert ops == [
        Download("d", d("d", rev=1), None),
        Download("d/x", f("d/x", "edited", rev=5), None),
    ]


def test_a_folder_that_became_a_file_is_replaced_after_its_contents_are_deleted():
    ops = run(
        [d("t"), f("t/one", rev=None)],
        [f("t", "file now", rev=4)],
        [d("t", rev=1), f("t/one", rev=2)],
    )
    assert [type(o).__name__ + ":" + o.path for o in ops] == ["DeleteLocal:t/one", "Download:t"]


def test_a_file_that_became_a_folder_is_replaced_before_its_contents_arrive():
    ops = run([f("t", rev=None)], [d("t", rev=3), f("t/in", rev=4)], [f("t", rev=1)])
    assert [type(o).__name__ + ":" + o.path for o in ops] == ["Download:t", "Download:t/in"]


def names(ops) -> list[str]:
    return [type(o).__name__ + ":" + o.path for o in ops]


def test_a_local_file_over_a_folder_is_committed_after_the_folder_is_emptied():
    # sim seed 7011's rule, half one: the child deletes go first (the server keeps a tree)
    ops = run([f("t", "file now")], [d("t", rev=1), f("t/one", rev=2)],
              [d("t", rev=1), f("t/one", rev=2)])  # fmt: skip
    assert names(ops) == ["DeleteRemote:t/one", "Upload:t"]


def test_a_local_file_over_a_folder_another_device_added_to_moves_aside():
    # sim seed 7011: the folder comes back with the other device's edit; the file is kept
    ops = run([f("t", "file now")], [d("t", rev=1), f("t/one", "edited", rev=5)],
              [d("t", rev=1), f("t/one", rev=2)])  # fmt: skip
    assert names(ops) == ["MoveAside:t", "Download:t/one"]
    ops = run([f("t", "new")], [f("t/x", rev=3)], [])  # a folder implied by its entries
    assert names(ops) == ["MoveAside:t", "Download:t/x"]


def test_a_remote_file_over_a_folder_that_holds_local_changes_is_a_conflict():
    # sim seed 7001: the local folder, contents and all, becomes the conflicted copy
    ops = run([d("t"), f("t/new")], [f("t", "file now", rev=4)], [d("t", rev=1)])
    assert names(ops) == ["Upload:t/new", "Conflict:t"]
    assert ops[1] == Conflict("t", d("t"), f("t", "file now", rev=4), None)


def test_order_parents_first_for_creates_children_first_for_deletes():
    ops = run(
        [d("n"), d("n/m"), f("n/m/f")],
        [d("o", rev=1), d("o/p", rev=2), f("o/p/g", rev=3)],
        [d("o", rev=1), d("o/p", rev=2), f("o/p/g", rev=3)],
    )
    assert [type(o).__name__ + ":" + o.path for o in ops] == [
        "Upload:n", "Upload:n/m", "Upload:n/m/f",
        "DeleteRemote:o/p/g", "DeleteRemote:o/p", "DeleteRemote:o",
    ]  # fmt: skip
    ops = run(
        [d("o"), d("o/p"), f("o/p/g")],
        [d("n", rev=4), d("n/m", rev=5)],
        [d("o", rev=1), d("o/p", rev=2), f("o/p/g", rev=3)],
    )
    kinds = [type(o).__name__ for o in ops]
    assert kinds == ["Download", "Download", "DeleteLocal", "DeleteLocal", "DeleteLocal"]
    assert [o.path for o in ops[2:]] == ["o/p/g", "o/p", "o"]


# -- properties over an in-memory model of both sides -------------------------------
NAMES = ["a", "b", "c", "d/x", "d/y"]
CONTENTS = ["1", "2", "3"]


@st.composite
def scenario(draw):
    base: dict[str, FileState] = {}
    rev = 0
    for name in NAMES:
        if draw(st.booleans()):
            rev += 1
            base[name] = f(name, draw(st.sampled_from(CONTENTS)), rev=rev)
    if any(p.startswith("d/") for p in base):
        rev += 1
        base["d"] = d("d", rev=rev)

    def side(remote: bool):
        nonlocal rev
        out = {}
        for name in NAMES:
            choice = draw(st.sampled_from(["keep", "edit", "delete", "create"]))
            old = base.get(name)
            if old is not None and choice == "keep":
                out[name] = old if remote else replace(old, rev=None)
            elif (old is not None and choice == "edit") or (old is None and choice == "create"):
                rev += 1
                content = draw(st.sampled_from(CONTENTS)) + ("r" if remote else "l")
                out[name] = f(name, content, rev=rev if remote else None)
        if any(p.startswith("d/") for p in out):
            out["d"] = (
                base.get("d", d("d", rev=None))
                if not remote
                else base.get("d") or d("d", rev=(rev := rev + 1))
            )
            if not remote:
                out["d"] = replace(out["d"], rev=None)
        return out

    return side(False), side(True), base


def apply(ops, local, remote, base, counter):
    for op in ops:
        if isinstance(op, Upload):
            counter[0] += 1
            state = replace(op.local, rev=counter[0])
            remote[op.path] = base[op.path] = state
        elif isinstance(op, DeleteRemote):
            remote.pop(op.path, None)
            base.pop(op.path, None)
        elif isinstance(op, Download):
            local[op.path] = replace(op.remote, rev=None)
            base[op.path] = op.remote
        elif isinstance(op, DeleteLocal):
            local.pop(op.path, None)
            base.pop(op.path, None)
        elif isinstance(op, Conflict):
            aside = op.path + " (conflicted copy)"
            local[aside] = replace(op.local, path=aside)
            local[op.path] = replace(op.remote, rev=None)
            base[op.path] = op.remote
        elif isinstance(op, SetBase):
            if op.state is None:
                base.pop(op.path, None)
            else:
                base[op.path] = op.state


def content(tree):
    return {p: (s.kind, s.blocks) for p, s in tree.items()}


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_plans_converge_and_lose_nothing(sides):
    local, remote, base = (dict(x) for x in sides)
    written = {
        s.blocks for p, s in local.items() if s.kind == "file" and not s.same_content(base.get(p))
    }
    counter = [1000]
    for _ in range(5):
        ops = plan(local, remote, base, device="dev", today=TODAY)
        if not ops:
            break
        apply(ops, local, remote, base, counter)
    assert plan(local, remote, base, device="dev", today=TODAY) == []
    assert content(local) == content(remote)
    kept = {s.blocks for s in local.values()}
    assert written <= kept, "a local edit was lost"
