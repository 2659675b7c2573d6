"""The loop hands memory back after a big pass, or after many small ones, and only once
the cycle's frame, which holds its ops, trees and path sets, is gone, and no more work
is queued."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from syncd.engine import loop as loop_mod
from syncd.transport.client import ServerClient
from tests.support.loops import sync_loop
from tests.support.server import ServerProc


@pytest.fixture
def device(server: ServerProc, new_user, tmp_path: Path):
    """A device's sync loop on its folder, and that folder."""
    session = new_user("a")
    client = ServerClient(server.url, session.token)
    root = tmp_path / "a"
    yield sync_loop(root, client, session, device="a"), root
    client.close()


def test_memory_is_released_after_the_cycle_and_small_cycles_add_up(
    device, monkeypatch: pytest.MonkeyPatch
):
    loop, root = device
    alive: list[bool] = []  # at each release: was a cycle's frame (and its ops) still live?

    def release() -> None:
        frame = sys._getframe(1)
        names = []
        while frame is not None:
            names.append(frame.f_code.co_name)
            frame = frame.f_back
        alive.append("_cycle" in names)

    monkeypatch.setattr(loop_mod, "release_memory", release)
    monkeypatch.setattr(loop_mod, "RELEASE_AFTER", 6)
    loop.tick()  # the first cycle is a full pass: released at once
    assert alive == [False]
    for i in range(3):  # three cycles of one new file each: 2-3 paths apiece
        (root / f"f{i}").write_bytes(b"x" * (i + 1))
        loop.post("dirty", {f"f{i}"})
        loop.tick()
    assert len(alive) == 2  # the small cycles added up to one more release
    assert alive == [False, False]  # never while the cycle's ops were still held
    assert {loop.index.get("base", f"f{i}") is not None for i in range(3)} == {True}


def test_memory_is_not_released_while_more_work_is_queued(device, monkeypatch: pytest.MonkeyPatch):
    loop, root = device
    released: list[int] = []
    monkeypatch.setattr(loop_mod, "release_memory", lambda: released.append(1))
    monkeypatch.setattr(loop_mod, "RELEASE_AFTER", 1)
    real_cycle = loop._cycle
    more = ["f1", "f0"]

    def cycle_then_news(dirty):  # type: ignore[no-untyped-def]
        real_cycle(dirty)
        if more:  # the watcher posts the next part of a burst meanwhile
            name = more.pop()
            (root / name).write_bytes(name.encode())
            loop.post("dirty", {name})

    monkeypatch.setattr(loop, "_cycle", cycle_then_news)
    loop.tick()  # the full pass; f0 is queued by its end
    loop.tick()  # f0; f1 is queued by its end
    assert released == []
    loop.tick()  # f1; nothing queued: the memory of all three goes back now
    assert released == [1]
    assert {loop.index.get("base", n) is not None for n in ("f0", "f1")} == {True}
