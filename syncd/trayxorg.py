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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PIL import Image

from syncd.trayicon import place

FALLBACK = (128, 128, 128)  # the panel's colour when it cannot be read


def xorg_icon_class(base: type) -> type:
    """A subclass of pystray's xorg Icon whose image comes from `renderer(size)`."""
    import Xlib.error
    from Xlib import X

    class XorgIcon(base):  # type: ignore[misc, valid-type]
        renderer: Callable[[int], Image.Image] | None = None

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
