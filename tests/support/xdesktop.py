"""A real headless desktop for tests: Xvfb, a system tray (trayer), a D-Bus session bus
with a notification service (dunst), and helpers to find windows and take screenshots."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

TOOLS = {"Xvfb": "xvfb", "trayer": "trayer", "xdotool": "xdotool"}
NOTIFY_TOOLS = {"dbus-daemon": "dbus-daemon", "dunst": "dunst"}


X_ANSWER = 20.0  # seconds an X request may take before the display counts as frozen


def _open_display(name: str):
    """A python-xlib connection to `name`, or AssertionError if the X server does not
    answer within X_ANSWER s (a client holding a server grab freezes every other one;
    the tests must fail and clean up then, not hang)."""
    from Xlib import display

    got: list = []
    opener = threading.Thread(target=lambda: got.append(display.Display(name)), daemon=True)
    opener.start()
    opener.join(X_ANSWER)
    if not got:
        raise AssertionError(f"the X server {name} does not answer (is it grabbed?)")
    return got[0]


def missing(tools: dict[str, str]) -> list[str]:
    return [f"{cmd} (Debian package {pkg})" for cmd, pkg in tools.items() if not shutil.which(cmd)]


@dataclass
class Window:
    id: int
    x: int  # root coordinates
    y: int
    width: int
    height: int
    name: str  # _NET_WM_NAME (UTF-8), else WM_NAME
    embedded: bool  # its parent is not the root window (docked in a tray)


@dataclass
class XDesktop:
    width: int = 800
    height: int = 480
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="xdesk-")))
    display: str = ""
    bus: str = ""
    procs: list[subprocess.Popen] = field(default_factory=list)

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, **kw: object
    ) -> subprocess.Popen:
        log = (self.base / f"{name}.log").open("ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, **kw)
        self.procs.append(proc)
        return proc

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, "DISPLAY": self.display}
        if self.bus:
            env["DBUS_SESSION_BUS_ADDRESS"] = self.bus
        return env

    def start_x(self) -> XDesktop:
        """Xvfb on a display number it picks itself (-displayfd: no races), then trayer."""
        r, w = os.pipe()
        self._spawn(
            "xvfb",
            [
                "Xvfb",
                "-displayfd",
                str(w),
                "-screen",
                "0",
                f"{self.width}x{self.height}x24",
                "-nolisten",
                "tcp",
            ],
            pass_fds=(w,),
        )
        os.close(w)
        with os.fdopen(r) as fh:
            number = fh.readline().strip()
        if not number:
            raise RuntimeError(f"Xvfb did not start:\n{self.log('xvfb')}")
        self.display = f":{number}"
        self._spawn(
            "trayer",
            [
                "trayer",
                "--edge",
                "top",
                "--align",
                "right",
                "--widthtype",
                "request",
                "--height",
                "32",
                "--SetDockType",
                "true",
                "--transparent",
                "false",
            ],
            env=self.env,
        )
        self.wait(lambda: self.tray_manager_present(), "trayer to own the system tray")
        return self

    def start_notifications(self) -> XDesktop:
        """A private session bus and dunst on it (shows notifications on our display)."""
        self.bus = f"unix:path={self.base / 'bus'}"
        self._spawn(
            "dbus", ["dbus-daemon", "--session", f"--address={self.bus}", "--nofork", "--nopidfile"]
        )
        self.wait(lambda: (self.base / "bus").exists(), "the session bus")
        self._spawn("dunst", ["dunst"], env=self.env)
        self.wait(lambda: self.notification_service() is not None, "dunst on the bus")
        return self

    def log(self, name: str) -> str:
        path = self.base / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def wait(self, cond, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(Exception):
                if cond():
                    return
            if time.monotonic() > deadline:
                logs = "\n".join(
                    f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                    for p in self.base.glob("*.log")
                )
                raise AssertionError(f"timed out waiting for {what}\n{logs}")
            time.sleep(0.05)

    # -- looking at the screen ---------------------------------------------------------------
    def tray_manager_present(self) -> bool:
        from Xlib import X

        d = _open_display(self.display)
        try:
            atom = d.intern_atom(f"_NET_SYSTEM_TRAY_S{d.get_default_screen()}")
            return d.get_selection_owner(atom) != X.NONE
        finally:
            d.close()

    def windows(self, wm_class: str) -> list[Window]:
        """Mapped windows whose WM_CLASS contains `wm_class`, anywhere in the tree."""
        from Xlib import X

        d = _open_display(self.display)
        root = d.screen().root
        found: list[Window] = []
        utf8, net_name = d.intern_atom("UTF8_STRING"), d.intern_atom("_NET_WM_NAME")

        def walk(win, parent) -> None:
            with contextlib.suppress(Exception):
                cls = win.get_wm_class() or ()
                if wm_class in cls and win.get_attributes().map_state == X.IsViewable:
                    geo = win.get_geometry()
                    at = root.translate_coords(win, 0, 0)
                    prop = win.get_full_property(net_name, utf8)
                    name = prop.value.decode() if prop else (win.get_wm_name() or "")
                    found.append(
                        Window(
                            win.id,
                            at.x,
                            at.y,
                            geo.width,
                            geo.height,
                            name,
                            parent is not None and parent.id != root.id,
                        )
                    )
            for child in win.query_tree().children:
                walk(child, win)

        try:
            walk(root, None)
        finally:
            d.close()
        return found

    def screenshot(self, path: Path | None = None):
        from PIL import ImageGrab

        img = ImageGrab.grab(xdisplay=self.display)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            img.save(path)
        return img

    def xdotool(self, *args: str) -> None:
        subprocess.run(["xdotool", *args], env=self.env, check=True, timeout=30)

    # -- notifications -------------------------------------------------------------------------
    def _dunst_call(self, member: str, signature: str = "", body: list | None = None):
        from dbus_fast import Message, MessageType
        from dbus_fast.aio import MessageBus

        async def call():
            bus = await MessageBus(bus_address=self.bus).connect()
            try:
                reply = await bus.call(
                    Message(
                        destination="org.freedesktop.Notifications",
                        path="/org/freedesktop/Notifications",
                        interface="org.dunstproject.cmd0",
                        member=member,
                        signature=signature,
                        body=body or [],
                    )
                )
            finally:
                bus.disconnect()
            if reply.message_type == MessageType.ERROR:
                raise RuntimeError(f"{member}: {reply.error_name} {reply.body}")
            return reply.body

        return asyncio.run(call())

    def notification_service(self) -> object | None:
        try:
            return self._dunst_call("NotificationListHistory")
        except Exception:
            return None

    def notifications(self) -> list[tuple[str, str]]:
        """(summary, body) of every notification shown so far (closes those on screen)."""
        self._dunst_call("NotificationCloseAll")
        time.sleep(0.2)  # dunst moves closed notifications to its history
        history = self._dunst_call("NotificationListHistory")[0]
        return [(n["summary"].value, n["body"].value) for n in history]

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()
        shutil.rmtree(self.base, ignore_errors=True)
