"""The tray icon on pystray's X11 (XEmbed) backend, with what that backend lacks.

- It never asks X for button presses (pystray issue #151: clicks do nothing); this
  subclass selects them, and a left or right click runs the default action (our menu).
- It would stretch a square icon to the slot and paint transparent pixels black; here
  the icon is drawn at the size the tray gives it, over the panel's own background.
- It asks the tray to dock the icon on every new image and again when shown; repeated
  requests race in the tray (trayer then squeezes the icon to one pixel, or drops
  it). Here the icon asks once, and a docked icon is just redrawn.
- WM_NAME is Latin-1 only; the full title also goes to _NET_WM_NAME (UTF-8).
- It grabs the whole X server to look up the tray's owner. If that connection then
  stalls, every program on the display freezes with it (seen under load: Tk, the tests'
  own connections and the tray all stuck for good). The lookup is one request and needs
  no grab: if the tray goes away between it and the dock request, the DestroyNotify we
  select for, or the next retry, puts it right.
- Other threads (the status poller, the animation) hand their changes to the mainloop
  as a ClientMessage on the mainloop's own connection. python-xlib is not safe there:
  a flush from another thread while the mainloop waits for a reply (reading the
  panel's pixels) left the reply unread for good, the icon frozen at its first title
  (seen in about one test run in 30). Here they post from a connection of their own,
  one at a time, so the mainloop's connection is only ever used by the mainloop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PIL import Image

from syncd.trayicon import place

FALLBACK = (128, 128, 128)  # the panel's colour when it cannot be read


def xorg_icon_class(base: type) -> type:
    """A subclass of pystray's xorg Icon whose image comes from `renderer(size)`."""
    import Xlib.display
    import Xlib.error
    import Xlib.protocol.event
    from Xlib import X

    class XorgIcon(base):  # type: ignore[misc, valid-type]
        renderer: Callable[[int], Image.Image] | None = None

        def _rewrite_implementation(self, *methods: Callable[[], None]) -> None:
            """pystray's mainloop handlers, with callers on other threads posting from
            a connection of their own (see the module doc)."""
            super()._rewrite_implementation(*methods)
            self._poster: Any = None
            self._post_lock = threading.Lock()
            for original in methods:
                name = original.__name__
                atom = self._display.intern_atom(f"_PYSTRAY_{name.upper()}")
                setattr(self, name, self._dispatcher(original, atom))

        def _dispatcher(self, original: Callable[[], None], atom: int) -> Callable[[], None]:
            def dispatch() -> None:
                mainloop = getattr(self, "_thread", None)
                if mainloop is not None and threading.current_thread() is mainloop:
                    original()
                    return
                with self._post_lock:  # one at a time: the results share one queue
                    self._post(atom)
                    result = self._queue.get()
                if result is not True:
                    raise result[1].with_traceback(result[2])

            return dispatch

        def _post(self, atom: int) -> None:
            """Send our window a ClientMessage from the posting connection; with no
            event mask it goes to the window's creator, the mainloop's connection."""
            if self._poster is None:
                self._poster = Xlib.display.Display(self._display.get_display_name())
            window = self._poster.create_resource_object("window", self._window.id)
            message = Xlib.protocol.event.ClientMessage(
                window=window, client_type=atom, data=(32, (X.CurrentTime, 0, 0, 0, 0))
            )
            window.send_event(message, event_mask=X.NoEventMask)
            self._poster.flush()

        def _background(self, width: int, height: int) -> Image.Image:
            """What the panel shows under our window: with a ParentRelative background,
            clearing the window paints the parent's background, which we read back."""
            window: Any = self._window
            try:
                window.change_attributes(background_pixmap=X.ParentRelative)
                window.clear_area(0, 0, width, height)
                self._display.sync()
                raw = window.get_image(0, 0, width, height, X.ZPixmap, 0xFFFFFFFF)
                if raw.depth in (24, 32) and len(raw.data) == width * height * 4:
                    return Image.frombytes("RGB", (width, height), raw.data, "raw", "BGRX")
            except Xlib.error.XError:
                pass
            return Image.new("RGB", (width, height), FALLBACK)

        def _create_window(self) -> Any:
            window = super()._create_window()
            window.change_attributes(
                event_mask=X.ExposureMask | X.StructureNotifyMask | X.ButtonPressMask
            )
            return window

        def _on_button_press(self, event: Any) -> None:
            if event.detail in (1, 3):  # left or right button: the menu
                self()

        def _get_systray_manager(self) -> Any:
            """The window owning the tray selection, or None (no server grab)."""
            owner = self._display.get_selection_owner(self._net_system_tray_sx)
            if owner == X.NONE:
                return None
            return self._display.create_resource_object("window", owner.id)

        def _show(self) -> None:
            if self._systray_manager is None:
                try:
                    self._assert_docked()
                except AssertionError:
                    self._log.error("no system tray to dock the icon in (will retry)")

        def _update_icon(self) -> None:
            self._icon_data = None
            if self._systray_manager is not None:
                self._draw()
            self._icon_valid = True

        def _update_title(self) -> None:
            """WM_NAME is Latin-1; the full title goes to _NET_WM_NAME (UTF-8)."""
            window: Any = self._window
            title = str(self.title)
            window.set_wm_name(title.encode("latin-1", "replace").decode("latin-1"))
            utf8 = self._display.intern_atom("UTF8_STRING")
            net_wm_name = self._display.intern_atom("_NET_WM_NAME")
            window.change_property(net_wm_name, utf8, 8, title.encode())
            self._display.flush()  # sent now, not when the mainloop next blocks on events

        def _assert_icon_data(self, width: int, height: int) -> None:
            if self._icon_data and self._icon_data.size == (width, height):
                return
            side = max(8, min(width, height))
            if self.renderer is not None:
                icon = self.renderer(side)
            else:
                icon = self._icon.resize((side, side), Image.LANCZOS)
            data = place(icon, self._background(width, height))
            data.tostring = data.tobytes  # what python-xlib's put_pil_image calls
            self._icon_data = data

    return XorgIcon
