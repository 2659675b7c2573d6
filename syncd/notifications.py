"""Desktop notifications for conflicts and errors (desktop-notifier), silent where none work.

The daemon watches its own status: a conflicted copy it made, or the sync stopping on
an error, becomes one notification. Which notifications a change of status deserves is
a pure function of two snapshots (`notices`); delivery goes through desktop-notifier
(D-Bus org.freedesktop.Notifications on Linux, Notification Center on macOS, WinRT on
Windows). With no notification service (no D-Bus session: a headless box, a service
started outside the desktop session) nothing is shown and nothing is printed: the
first failure is logged once at info level and the status says so.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

log = logging.getLogger("syncd.notifications")
APP_NAME = "syncd"
MAX_NAMES = 3  # conflicted copies named in one notification


@dataclass(frozen=True)
class Notice:
    title: str
    message: str
    urgent: bool = False


def _name(path: str) -> str:
    return path.rpartition("/")[2] or path


def notices(before: Mapping | None, after: Mapping) -> list[Notice]:
    """What to tell the user about the change from snapshot `before` to `after`.

    `before` None is the daemon's first look: nothing that was already there is news.
    """
    if before is None:
        return []
    out: list[Notice] = []
    made = list(after.get("conflicts_made") or [])
    new = made[len(before.get("conflicts_made") or []) :]
    if len(new) == 1:
        out.append(
            Notice(
                "Conflicted copy",
                f"{new[0]} was changed here and on another device; both versions were kept "
                f"(yours is “{_name(new[0])}”).",
            )
        )
    elif new:
        names = ", ".join(_name(p) for p in new[:MAX_NAMES])
        more = f" and {len(new) - MAX_NAMES} more" if len(new) > MAX_NAMES else ""
        out.append(
            Notice(
                f"{len(new)} conflicted copies",
                f"Changed here and on another device; both versions were kept: {names}{more}.",
            )
        )
    error = after.get("error") if after.get("state") == "error" else None
    old_error = before.get("error") if before.get("state") == "error" else None
    if error and error != old_error:
        where = f"{error['path']}: " if error.get("path") else ""
        out.append(Notice("syncd stopped syncing", f"{where}{error.get('reason')}", urgent=True))
    return out


def session_bus_address(env: Mapping[str, str]) -> str | None:
    """The D-Bus session bus to reach a Linux notification service on, if any."""
    if env.get("DBUS_SESSION_BUS_ADDRESS"):
        return env["DBUS_SESSION_BUS_ADDRESS"]
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime:
        path = os.path.join(runtime, "bus")
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                return f"unix:path={path}"
        except OSError:
            pass
    return None


class DesktopNotices:
    """Sends notices; remembers whether any notification service answered."""

    def __init__(self, app_name: str = APP_NAME) -> None:
        self.app_name = app_name
        self.available: bool | None = None  # None: not tried yet
        self.reason = ""
        self._notifier: object | None = None
        self._lock = threading.Lock()
        if sys.platform.startswith("linux"):
            address = session_bus_address(os.environ)
            if address is None:
                self.available, self.reason = False, "no D-Bus session bus"
            else:
                os.environ.setdefault("DBUS_SESSION_BUS_ADDRESS", address)

    def state(self) -> str:
        if self.available is None:
            return "not tried yet"
        return "available" if self.available else f"unavailable ({self.reason})"

    def send(self, notice: Notice) -> bool:
        """Show `notice`; False (and silence) when no notification service works."""
        if self.available is False and self.reason == "no D-Bus session bus":
            return False
        with self._lock:
            try:
                delivered = self._send(notice)
            except Exception as exc:  # any backend failure: no notification, no noise
                delivered, self.reason = False, f"{type(exc).__name__}: {exc}"
            else:
                self.reason = "" if delivered else "no notification service answered"
            if not delivered and self.available is not False:
                log.info("desktop notifications unavailable: %s", self.reason)
            self.available = delivered
            return delivered

    def _send(self, notice: Notice) -> bool:
        from desktop_notifier import DesktopNotifierSync, Urgency  # loads D-Bus libraries

        # the library logs every failure with a traceback; we report it once ourselves
        logging.getLogger("desktop_notifier").setLevel(logging.CRITICAL)
        if self._notifier is None:
            self._notifier = DesktopNotifierSync(app_name=self.app_name, app_icon=None)
        dispatched = threading.Event()
        self._notifier.send(  # type: ignore[attr-defined]
            title=notice.title,
            message=notice.message,
            urgency=Urgency.Critical if notice.urgent else Urgency.Normal,
            on_dispatched=dispatched.set,
        )
        if not dispatched.is_set():
            self._notifier = None  # reconnect next time (the service may appear later)
        return dispatched.is_set()


class StatusNotifier:
    """A thread that turns status changes into desktop notifications."""

    def __init__(
        self,
        snapshot: Callable[[], dict],
        wait_change: Callable[[int, float], int],
        sender: DesktopNotices,
    ) -> None:
        self.snapshot = snapshot
        self.wait_change = wait_change
        self.sender = sender
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notifications", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        before = self.snapshot()
        while not self._stop.is_set():
            self.wait_change(int(before.get("version", 0)), 1.0)
            after = self.snapshot()
            for notice in notices(before, after):
                self.sender.send(notice)
            before = after
