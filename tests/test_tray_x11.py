"""`syncd tray` for real: Xvfb, a system tray from Debian (trayer), a real server and
daemon. The icon docks, shows the daemon's state in its pixels and title, a click opens
its menu, the menu pauses the daemon, an error turns it red and pops up a desktop
notification (dunst on a private D-Bus), and "Close tray" ends it. Screenshots are
saved under the test's tmp dir and copied to bench/results/ (see the README).
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.trayicon import SPECS
from tests.support.devices import HEADLESS_ENV, DeviceProc, wait_for
from tests.support.server import login
from tests.support.xdesktop import NOTIFY_TOOLS, TOOLS, XDesktop, missing

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results"
_users = itertools.count()

absent = missing(TOOLS) + missing(NOTIFY_TOOLS)
pytestmark = pytest.mark.skipif(
    bool(absent),
    reason="needs an X server and a tray host: missing "
    + ", ".join(absent)
    + " (.ci/apt-packages lists them; apt-get install them to run this test)",
)


@pytest.fixture
def desktop():
    desk = XDesktop().start_x().start_notifications()
    yield desk
    desk.stop()


def icon_window(desk: XDesktop):
    found = [w for w in desk.windows("syncdSystemTrayIcon") if w.embedded]
    return found[0] if found else None


def state_pixels(desk: XDesktop, state: str) -> int:
    """Pixels of the docked icon within a few levels of `state`'s disk colour."""
    win = icon_window(desk)
    assert win is not None
    shot = desk.screenshot().crop((win.x, win.y, win.x + win.width, win.y + win.height))
    target = SPECS[state].color
    colours = shot.getcolors(shot.width * shot.height)
    return sum(
        n for n, c in colours if max(abs(a - b) for a, b in zip(c, target, strict=False)) <= 6
    )


def shows(desk: XDesktop, state: str, title: str) -> bool:
    win = icon_window(desk)
    return win is not None and win.name == f"syncd — {title}" and state_pixels(desk, state) > 40


def test_tray_icon_docks_follows_the_daemon_and_its_menu_works(server, desktop, tmp_path):
    user = f"x11tray{next(_users)}"
    server.adduser(user)
    device = DeviceProc(
        "desk",
        server,
        env_extra={"DISPLAY": desktop.display, "DBUS_SESSION_BUS_ADDRESS": desktop.bus},
    )
    tray = None
    try:
        device.link(user)
        (device.folder / "docs").mkdir(parents=True)
        for name in ("plan.txt", "budget.ods", "notes.md"):
            (device.folder / "docs" / name).write_text(name)
        device.start()
        wait_for(device.idle, "the first sync")
        env = {**desktop.env, **HEADLESS_ENV}
        env.pop("PYSTRAY_BACKEND", None)
        tray = subprocess.Popen(
            [sys.executable, "-m", "syncd", "--home", str(device.home), "tray"],
            env=env,
            stdout=(tmp_path / "tray.out").open("wb"),
            stderr=subprocess.STDOUT,
        )
        desktop.wait(
            lambda: shows(desktop, "up to date", "Up to date"),
            "the icon docked in the tray, green, titled Up to date",
        )
        win = icon_window(desktop)
        assert win.width >= 16 and win.height >= 16

        # a click opens the menu; the screenshot shows icon and menu
        desktop.xdotool(
            "mousemove", str(win.x + win.width // 2), str(win.y + win.height // 2), "click", "1"
        )
        desktop.wait(lambda: desktop.windows("Menu"), "the tray menu to open")
        menu = desktop.windows("Menu")[0]
        assert menu.height > 100 and menu.width > 80
        shot = tmp_path / "tray-screenshot.png"
        img = desktop.screenshot(shot)
        inside = img.crop((menu.x, menu.y, menu.x + menu.width, menu.y + menu.height))
        assert len(inside.getcolors(menu.width * menu.height) or []) > 10  # text is drawn
        RESULTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, RESULTS / "tray-screenshot.png")

        # the menu: status line, -, Open folder, Recent changes, Pause syncing, ...
        # (no window manager here: keys go to the window under the pointer)
        desktop.xdotool("mousemove", str(menu.x + 10), str(menu.y + 5))
        desktop.xdotool("key", "Down", "Down", "Down", "Return")
        wait_for(lambda: device.status()["state"] == "paused", "the menu to pause the daemon")
        desktop.wait(lambda: shows(desktop, "paused", "Paused"), "the icon to turn paused")
        device.control("resume")  # changes made elsewhere show up too
        desktop.wait(lambda: shows(desktop, "up to date", "Up to date"), "back to up to date")

        # the token is revoked: the daemon stops on an error, says so, and notifies
        cfg = json.loads((device.home / "config.json").read_text())
        admin = login(server, user, device="admin")
        assert admin.client.delete(f"/v1/devices/{cfg['device_id']}").status_code == 204
        (device.folder / "docs" / "new.txt").write_text("needs the server")
        desktop.wait(
            lambda: (
                icon_window(desktop).name.startswith("syncd — Error:")
                and state_pixels(desktop, "error") > 40
            ),
            "the icon to show the error",
            60,
        )
        desktop.screenshot(tmp_path / "tray-error-screenshot.png")
        shutil.copy(tmp_path / "tray-error-screenshot.png", RESULTS / "tray-error-screenshot.png")
        desktop.wait(
            lambda: any(
                summary == "syncd stopped syncing" and "token" in body
                for summary, body in desktop.notifications()
            ),
            "a desktop notification of the error",
        )

        # no daemon: the tray says so; then "Close tray" from its menu ends it
        device.stop()
        desktop.wait(
            lambda: shows(desktop, "not running", "syncd is not running"),
            "the icon to show that syncd is not running",
        )
        win = icon_window(desktop)
        desktop.xdotool(
            "mousemove", str(win.x + win.width // 2), str(win.y + win.height // 2), "click", "1"
        )
        desktop.wait(lambda: desktop.windows("Menu"), "the not-running menu")
        menu = desktop.windows("Menu")[0]
        desktop.xdotool("mousemove", str(menu.x + 10), str(menu.y + 5))
        # status line, Start syncd, -, Open folder, Open log, -, Close tray
        desktop.xdotool("key", "Down", "Down", "Down", "Down", "Return")
        assert tray.wait(30) == 0
    finally:
        print("--- icon:", icon_window(desktop), "tray exit:", tray and tray.poll())
        try:
            print("--- daemon status:", device.status())
        except Exception as exc:
            print("--- daemon status:", exc)
        if tray is not None and tray.poll() is None:
            tray.terminate()
            try:
                tray.wait(10)
            except subprocess.TimeoutExpired:
                tray.kill()
                tray.wait()
        for log in (tmp_path / "tray.out", device.home / "tray.log"):
            if log.exists():
                print(f"--- {log}\n{log.read_text(errors='replace')[-3000:]}")
        print("--- daemon:", device.output()[-1500:])
        device.cleanup()
