"""The tray's menu actions against a real daemon (and a real server): pause, resume,
quit and start go through the control socket; the "open" actions hand the desktop the
right path (recorded here instead of launching a file manager)."""

from __future__ import annotations

import itertools

import pytest

from syncd.home import ClientHome
from syncd.tray import TrayActions, known_folder
from tests.support.devices import DeviceProc, syncd, wait_for

_users = itertools.count()


@pytest.fixture
def device(server):
    user = f"tray{next(_users)}"
    server.adduser(user)
    d = DeviceProc("desk", server)
    d.link(user)
    d.start()
    yield d
    syncd("stop", home=d.home, check=False)  # also a daemon that "Start syncd" spawned
    d.cleanup()


def test_menu_actions_call_the_daemon(device, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    home = ClientHome(device.home)
    launched: list[tuple[str, bool]] = []
    closed: list[bool] = []

    def launch(target: str, locate: bool = False) -> int:
        launched.append((target, locate))
        return 0

    actions = TrayActions(home, on_close=lambda: closed.append(True), launch=launch)
    actions.folder = known_folder(home)
    assert actions.folder == str(device.folder)

    actions.run(("pause",))
    assert device.status()["state"] == "paused"
    actions.run(("resume",))
    wait_for(lambda: device.status()["state"] != "paused", "resumed")

    (device.folder / "docs").mkdir()
    (device.folder / "docs" / "a.txt").write_text("a")
    actions.run(("open_folder",))
    actions.run(("reveal", "docs/a.txt"))
    actions.run(("reveal", "gone/b.txt"))  # deleted since: open the folder it was in
    actions.run(("open_log",))
    assert launched == [
        (str(device.folder), False),
        (str(device.folder / "docs" / "a.txt"), True),
        (str(device.folder / "gone"), False),
        (str(device.home / "daemon.log"), False),
    ]

    actions.run(("quit",))  # stops the daemon, waiting until it has exited
    assert closed == [True]
    assert device.proc is not None and device.proc.wait(30) == 0
    assert "not running" in syncd("status", home=device.home, check=False).stderr

    actions.run(("start",))  # the not-running menu's "Start syncd"
    wait_for(lambda: syncd("status", home=device.home, check=False).returncode == 0,
             "the daemon started from the tray", 60)  # fmt: skip
    actions.run(("close",))
    assert closed == [True, True]
    assert device.status()["state"] in ("up to date", "syncing")  # closing left it running
