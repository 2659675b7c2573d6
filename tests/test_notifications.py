"""Desktop notifications: which status changes deserve one (pure), and silence where no
notification service exists — for real, with a daemon that has no D-Bus session (and,
where dbus-daemon is installed, one whose bus has no notification service).
Delivery to a real notification service is in tests/test_tray_x11.py (dunst)."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess

import pytest

from syncd.notifications import DesktopNotices, Notice, notices, session_bus_address
from tests.support.devices import DeviceProc, wait_for
from tests.support.server import login

_users = itertools.count()
BASE = {"state": "up to date", "conflicts_made": [], "error": None}


def test_a_new_conflicted_copy_is_news():
    made = ["docs/plan (conflicted copy from desk 2026-03-03).txt"]
    (n,) = notices(BASE, {**BASE, "conflicts_made": made})
    assert n.title == "Conflicted copy" and not n.urgent
    assert made[0] in n.message and "“plan (conflicted copy from desk 2026-03-03).txt”" in n.message
    assert notices({**BASE, "conflicts_made": made}, {**BASE, "conflicts_made": made}) == []


def test_many_conflicts_make_one_notification():
    made = [f"f{i} (conflicted copy from desk 2026-03-03).txt" for i in range(5)]
    (n,) = notices(BASE, {**BASE, "conflicts_made": made})
    assert n.title == "5 conflicted copies" and n.message.endswith("and 2 more.")


def test_an_error_is_news_once_and_the_first_look_is_not():
    err = {"state": "error", "error": {"path": "", "reason": "invalid or revoked token"}}
    (n,) = notices(BASE, {**BASE, **err})
    assert n == Notice("syncd stopped syncing", "invalid or revoked token", urgent=True)
    assert notices({**BASE, **err}, {**BASE, **err}) == []  # still the same error
    other = {"state": "error", "error": {"path": "a.txt", "reason": "disk full"}}
    assert notices({**BASE, **err}, {**BASE, **other})[0].message == "a.txt: disk full"
    assert notices(None, {**BASE, **err}) == []  # what was there at start is not news
    assert notices(BASE, {**BASE, "state": "offline"}) == []  # offline is not an error


def test_the_session_bus_is_found_from_the_environment(tmp_path):
    assert session_bus_address({"DBUS_SESSION_BUS_ADDRESS": "unix:path=/x"}) == "unix:path=/x"
    assert session_bus_address({"XDG_RUNTIME_DIR": str(tmp_path)}) is None  # no socket there
    assert session_bus_address({}) is None


def test_no_session_bus_means_silence(monkeypatch):
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    sender = DesktopNotices()
    assert sender.send(Notice("t", "m")) is False
    assert sender.state() == "unavailable (no D-Bus session bus)"


@pytest.mark.skipif(not shutil.which("dbus-daemon"), reason="needs dbus-daemon (Debian package)")
def test_a_bus_without_a_notification_service_means_silence(tmp_path, monkeypatch, caplog):
    bus = f"unix:path={tmp_path / 'bus'}"
    proc = subprocess.Popen(
        ["dbus-daemon", "--session", f"--address={bus}", "--nofork", "--nopidfile"],
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: (tmp_path / "bus").exists(), "the bus", 30)
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus)
        sender = DesktopNotices()
        with caplog.at_level("DEBUG"):
            assert sender.send(Notice("t", "m")) is False
            assert sender.send(Notice("t", "again")) is False
        assert sender.state().startswith("unavailable")
        said = [r for r in caplog.records if r.levelno >= 20]  # info and above
        assert [r.getMessage().split(":")[0] for r in said] == ["desktop notifications unavailable"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_daemon_without_a_desktop_stays_silent_on_an_error(server):
    user = f"quiet{next(_users)}"
    server.adduser(user)
    device = DeviceProc(
        "desk", server, env_drop=("DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "DISPLAY")
    )
    try:
        device.link(user)
        device.start()
        wait_for(device.idle, "the first sync")
        assert device.status()["notifications"] == "unavailable (no D-Bus session bus)"
        cfg = json.loads((device.home / "config.json").read_text())
        admin = login(server, user, device="admin")
        admin.client.delete(f"/v1/devices/{cfg['device_id']}")
        (device.folder / "new.txt").write_text("x")
        wait_for(lambda: device.status()["state"] == "error", "the daemon to stop on an error")
        log = (device.home / "daemon.log").read_text()
        assert "Traceback" not in log and "Notification failed" not in log
    finally:
        device.cleanup()
