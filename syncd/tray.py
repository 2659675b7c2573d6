"""The tray icon (`syncd tray`): pystray + Pillow, a client of the daemon's control socket.

It never touches the engine, the index or the folder: a poller thread long-polls the
daemon (`wait`: answered as soon as the status changes), and each answer becomes an
icon (syncd/trayicon.py), a hover title and a menu (syncd/traymenu.py). Menu actions
are control requests (pause, resume, stop) or ask the desktop to open a folder.

Backends: pystray picks the platform's (AppIndicator or GTK where PyGObject exists,
Win32, macOS); those show the menu natively. In a virtualenv on X11 only pystray's
`xorg` backend works (XEmbed tray protocol): it has no menus, so a click pops up the
same menu with Tk, and the icon is drawn over the panel's own background, at the exact
size the tray gives it.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from syncd.control import DaemonNotRunning, control_request
from syncd.daemonize import stop_daemon
from syncd.errors import SyncdError
from syncd.home import ClientHome
from syncd.trayicon import frame_count, render
from syncd.traymenu import NOT_RUNNING, Item, menu_model, tooltip

log = logging.getLogger("syncd.tray")
WAIT = 10.0  # seconds the daemon may hold a `wait` request
RETRY = 0.5  # seconds between attempts while the daemon is not running
FRAME = 0.15  # seconds per frame of the syncing animation
SOURCE_SIZE = 64  # the image handed to backends that scale it themselves


class TrayActions:
    """What the menu's items do: control requests, or open something on the desktop."""

    def __init__(
        self,
        home: ClientHome,
        on_close: Callable[[], None],
        launch: Callable[..., int] = click.launch,
    ) -> None:
        self.home = home
        self.on_close = on_close
        self.launch = launch
        self.folder = ""

    def run(self, action: tuple[str, ...]) -> None:
        name, *args = action
        try:
            getattr(self, f"do_{name}")(*args)
        except SyncdError as exc:
            log.warning("%s: %s", name, exc)

    def _request(self, cmd: str) -> dict:
        return control_request(self.home.socket_path, cmd, timeout=10.0)

    def do_pause(self) -> None:
        self._request("pause")

    def do_resume(self) -> None:
        self._request("resume")

    def do_quit(self) -> None:
        """Stop the daemon as `syncd stop` does (waiting until it has exited), then close
        the tray."""
        try:
            stop_daemon(self.home)
        finally:
            self.on_close()

    def do_close(self) -> None:
        self.on_close()

    def do_start(self) -> None:
        cmd = [sys.executable, "-m", "syncd", "--home", str(self.home.root), "start"]
        subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _open(self, target: Path, locate: bool = False) -> None:
        code = self.launch(str(target), locate=locate)
        if code:
            log.warning("could not open %s (exit status %s)", target, code)

    def do_open_folder(self) -> None:
        if self.folder:
            self._open(Path(self.folder))

    def do_open_log(self) -> None:
        self._open(self.home.log_path)

    def do_reveal(self, path: str) -> None:
        """Open the folder holding `path` (a sync path), the file selected if possible."""
        if not self.folder:
            return
        full = Path(self.folder, *path.split("/"))
        self._open(full if full.exists() else full.parent, locate=full.exists())


def known_folder(home: ClientHome) -> str:
    """The sync folder from the config (to offer "Open folder" with no daemon)."""
    try:
        return home.load_config().folder
    except SyncdError:
        return ""


class TrayApp:
    def __init__(self, home: ClientHome, launch: Callable[..., int] = click.launch) -> None:
        import pystray  # needs a display (X11) or the platform's tray at import time

        self.pystray = pystray
        self.home = home
        self.actions = TrayActions(home, self.close, launch)
        self.snapshot: dict = {**NOT_RUNNING, "folder": known_folder(home)}
        self.menu: tuple[Item, ...] = ()
        self.frame = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._popups: queue.Queue[str] = queue.Queue()
        self.native_menu = bool(pystray.Icon.HAS_MENU)
        if pystray.Icon.__module__.endswith("_xorg"):
            from syncd.trayxorg import xorg_icon_class

            icon_class: Any = xorg_icon_class(pystray.Icon)
        else:
            icon_class = pystray.Icon
        self.icon = icon_class("syncd", self._image(SOURCE_SIZE), title="syncd")
        if hasattr(self.icon, "renderer"):
            self.icon.renderer = self._image
        self._apply(self.snapshot)

    # -- pictures and menus --------------------------------------------------------------
    def _image(self, size: int) -> Any:
        with self._lock:
            state, frame = str(self.snapshot.get("state")), self.frame
        return render(state, size, frame)

    def _apply(self, snap: dict) -> None:
        now = float(snap.get("now") or time.time())
        with self._lock:
            old_state = self.snapshot.get("state")
            self.snapshot = snap
            if snap.get("state") != old_state:
                self.frame = 0
            self.actions.folder = snap.get("folder") or self.actions.folder
            menu = menu_model(snap, now)
            changed = menu != self.menu
            self.menu = menu
        self.icon.title = tooltip(snap, now)
        if snap.get("state") != old_state:
            self.icon.icon = self._image(SOURCE_SIZE)
        if changed:
            self.icon.menu = self._pystray_menu(menu)

    def _pystray_menu(self, items: tuple[Item, ...]) -> Any:
        pystray = self.pystray
        if not self.native_menu:  # xorg: a click pops up the Tk menu
            return pystray.Menu(
                pystray.MenuItem("Menu", lambda: self._popups.put("menu"), default=True)
            )

        def convert(item: Item) -> Any:
            if item.separator:
                return pystray.Menu.SEPARATOR
            if item.children:
                return pystray.MenuItem(item.text, pystray.Menu(*map(convert, item.children)))
            action = item.action
            return pystray.MenuItem(
                item.text,
                (lambda: self.actions.run(action)) if action else None,
                enabled=item.enabled and action is not None,
            )

        return pystray.Menu(*map(convert, items))

    # -- threads -------------------------------------------------------------------------
    def _poll(self) -> None:
        version, use_wait = -1, True
        while not self._stop.is_set():
            try:
                if use_wait:
                    snap = control_request(
                        self.home.socket_path,
                        "wait",
                        timeout=WAIT + 10,
                        since=version,
                        seconds=WAIT,
                    )
                else:
                    snap = control_request(self.home.socket_path, "status", timeout=10)
            except DaemonNotRunning:
                snap = {**NOT_RUNNING, "folder": self.actions.folder}
            except SyncdError as exc:
                if "unknown command" in str(exc):
                    use_wait = False  # an older daemon: poll its status instead
                    continue
                snap = {**NOT_RUNNING, "folder": self.actions.folder}
            try:
                self._apply(snap)
            except Exception:  # never let the icon freeze on one bad update
                log.exception("could not show the status")
            version = int(snap.get("version", -1)) if snap.get("state") != "not running" else -1
            if version < 0 or not use_wait:
                self._stop.wait(RETRY)

    def _animate(self) -> None:
        while not self._stop.wait(FRAME):
            with self._lock:
                frames = frame_count(str(self.snapshot.get("state")))
                if frames <= 1:
                    continue
                self.frame = (self.frame + 1) % frames
            self.icon.icon = self._image(SOURCE_SIZE)

    def _setup(self, icon: Any) -> None:
        icon.visible = True
        for target in (self._poll, self._animate):
            threading.Thread(target=target, name=target.__name__, daemon=True).start()

    # -- running ---------------------------------------------------------------------------
    def run(self) -> None:
        """Show the icon until Close tray / Quit syncd (or `close()` from a signal)."""
        if self.native_menu:
            self.icon.run(self._setup)  # returns once close() has stopped the icon
            return
        from syncd.traypopup import run_with_popup

        worker = threading.Thread(
            target=self.icon.run, args=(self._setup,), name="xorg", daemon=True
        )
        worker.start()
        try:
            run_with_popup(lambda: self.menu, self.actions.run, self._popups, self._stop)
        finally:
            self.close()
            worker.join(timeout=5)

    def close(self) -> None:
        """End the tray; safe from any thread or a signal handler (it never blocks)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._popups.put("quit")
        # pystray's stop waits for its own thread, which may be busy drawing: not here
        threading.Thread(target=self.icon.stop, name="tray-stop", daemon=True).start()


def run_tray(home: ClientHome) -> None:
    """`syncd tray`: pick the X11 backend in a virtualenv, then run until closed."""
    if sys.platform.startswith("linux") and "PYSTRAY_BACKEND" not in os.environ:
        try:
            import gi  # noqa: F401  (PyGObject: AppIndicator/GTK backends)
        except ImportError:
            os.environ["PYSTRAY_BACKEND"] = "xorg"
    if os.environ.get("PYSTRAY_BACKEND") == "xorg" and not os.environ.get("DISPLAY"):
        raise SyncdError("no X display (DISPLAY is not set): the tray needs a desktop session")
    try:
        app = TrayApp(home)
    except Exception as exc:  # pystray/Xlib cannot reach the display or the tray
        raise SyncdError(f"cannot show the tray icon: {type(exc).__name__}: {exc}") from None
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _sig, _frame: app.close())
    app.run()
