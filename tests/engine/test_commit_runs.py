"""commit_op tells a long block list as runs of the base revision's around the change."""

from __future__ import annotations

from syncd.engine.remote import commit_op
from syncd.indexer.state import Block, FileState


def _blocks(tag: str, n: int) -> tuple[Block, ...]:
    return tuple(Block(f"{tag}{i:063x}"[:64], 100) for i in range(n))


def _state(blocks, rev=None):
    return FileState("f", "file", size=100 * len(blocks), blocks=blocks, rev=rev)


def _expand(runs, base):
    out = []
    for run in runs:
        if isinstance(run, list):
            out += base[run[0] : run[0] + run[1]]
        else:
            out.append(Block(run["id"], run["size"]))
    return tuple(out)


def test_an_edit_in_the_middle_sends_two_runs_and_the_new_block():
    old = _blocks("a", 50)
    new = (*old[:20], Block("b" * 64, 100), *old[21:])
    op = commit_op(_state(new), 7, "op", base=_state(old, rev=7))
    runs = op["blocks_from"]["runs"]
    assert op["blocks_from"]["rev"] == 7 and "blocks" not in op
    assert runs[0] == [0, 20] and runs[-1] == [21, 29] and len(runs) == 3
    assert _expand(runs, old) == new


def test_insertions_at_either_end_and_growth_expand_to_the_new_list():
    old = _blocks("a", 30)
    for new in [
        (Block("c" * 64, 1), *old[1:]),
        (*old, Block("d" * 64, 5)),
        (*old[:10], *_blocks("e", 3), *old[10:]),
    ]:
        op = commit_op(_state(new), 1, "op", base=_state(old, rev=1))
        assert _expand(op["blocks_from"]["runs"], old) == new


def test_small_new_or_unrelated_files_send_the_plain_list():
    old = _blocks("a", 30)
    for new, base in [
        (_blocks("a", 3), _state(old, rev=1)),  # too few blocks
        (_blocks("z", 30), _state(old, rev=1)),  # nothing in common
        (old, None),  # no base
        (old, _state(old, rev=None)),  # a base without a server revision
    ]:
        op = commit_op(_state(new), 1, "op", base=base)
        assert "blocks_from" not in op
        assert [b["id"] for b in op["blocks"]] == [b.id for b in new]
