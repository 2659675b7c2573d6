"""The loop hands memory back after a big pass, or after many small ones, and only once
the cycle's frame, which holds its ops, trees and path sets, is gone, no more work is
queued, and the loop has been idle for a moment. The loop's clock is the test's: it
moves only when a test says so."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from syncd.engine import loop as loop_mod
from syncd.transport.client import ServerClient
from tests.support.loops import TestClock, sync_loop
from tests.support.server import ServerProc


@pytest.fixture
def device(server: ServerProc, new_user, tmp_path: Path):
    """A device's sync loop on its folder, and that folder."""
    session = new_user("a")
    client = ServerClient(server.url, session.token)
    root = tmp_path / "a"
    loop = sync_loop(root, client, session, device="a")
    loop.clock = Clock()
    yield loop, root
    client.close()


class Clock(TestClock):
    def idle(self) -> None:
        """Let the loop's idle time before a release pass."""
        self.t += loop_mod.RELEASE_IDLE


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
    assert loop.tick() <= loop_mod.RELEASE_IDLE  # the first cycle is a full pass
    assert alive == []  # not yet: the next cycle may follow at once
    loop.clock.idle()
    loop.tick()  # idle for long enough: released now
    assert alive == [False]
    for i in range(3):  # three cycles of one new file each: 2-3 paths apiece
        (root / f"f{i}").write_bytes(b"x" * (i + 1))
        loop.post("dirty", {f"f{i}"})
        loop.tick()
        loop.clock.idle()
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
    loop.clock.idle()
    loop.tick()  # f0; f1 is queued by its end
    assert released == []
    loop.tick()  # f1; nothing queued
    assert released == []  # the loop is idle, but only just
    loop.clock.idle()
    loop.tick()  # the memory of all three goes back now
    assert released == [1]
    assert {loop.index.get("base", n) is not None for n in ("f0", "f1")} == {True}


def test_memory_is_released_on_the_idle_pass_after_a_cycle(device, monkeypatch: pytest.MonkeyPatch):
    """A cycle that ends with an event queued which starts no cycle of its own (a wake,
    the echo of its own writes while paused) still hands its memory back: on the next
    pass that finds the loop idle."""
    loop, _root = device
    released: list[int] = []
    monkeypatch.setattr(loop_mod, "release_memory", lambda: released.append(1))
    monkeypatch.setattr(loop_mod, "RELEASE_AFTER", 1)
    real_cycle = loop._cycle

    def cycle_then_wake(dirty):  # type: ignore[no-untyped-def]
        real_cycle(dirty)
        loop.post("wake")

    monkeypatch.setattr(loop, "_cycle", cycle_then_wake)
    loop.tick()  # the full pass; a wake is queued by its end
    assert released == []
    loop.clock.idle()
    loop.tick()  # no cycle: nothing is due, and nothing waits any more
    assert released == [1]
