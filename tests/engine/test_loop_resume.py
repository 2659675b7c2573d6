"""After a resume the status says "syncing" until the pass it asks for is done, so a
script (or a test) that waits for "up to date" never takes the moment between the
resume and the start of that pass for the end of the sync."""

from __future__ import annotations

from pathlib import Path

from syncd.transport.client import ServerClient
from tests.support.loops import sync_loop
from tests.support.server import ServerProc


def test_a_resumed_loop_is_syncing_until_its_pass_is_done(
    server: ServerProc, new_user, tmp_path: Path
):
    session = new_user("a")
    client = ServerClient(server.url, session.token)
    root = tmp_path / "a"
    loop = sync_loop(root, client, session, device="a")
    try:
        loop.tick()
        loop.post("pause")
        loop.tick()
        (root / "edit.txt").write_text("made while paused")
        loop.post("dirty", {"edit.txt"})
        loop.tick()
        assert loop.status.state() == "paused"
        assert loop.index.get("base", "edit.txt") is None  # nothing synced while paused
        states: list[str] = []
        cycle = loop._cycle

        def spy(dirty):  # the state a status reader sees as the pass begins
            states.append(loop.status.state())
            return cycle(dirty)

        loop._cycle = spy  # type: ignore[method-assign]
        loop.post("resume")
        loop.tick()
        assert states == ["syncing"]
        assert loop.status.state() == "up to date"
        assert loop.index.get("base", "edit.txt") is not None
    finally:
        client.close()
