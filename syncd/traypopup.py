"""The tray's menu as a Tk popup, for tray backends without menus (pystray's xorg).

Tk runs in the calling (main) thread; other threads ask for the popup by putting
"menu" on a queue ("quit" ends the loop). Items run their action in a worker thread,
so a slow daemon never freezes the menu. Without Tk, a click opens the sync folder.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from syncd.traymenu import Item

log = logging.getLogger("syncd.tray")
PUMP_MS = 50


def _in_worker(run_action: Callable[[tuple[str, ...]], None], action: tuple[str, ...]) -> None:
    threading.Thread(target=run_action, args=(action,), name="tray-action", daemon=True).start()


def popup_position(
    pointer: tuple[int, int], menu: tuple[int, int], screen: tuple[int, int], gap: int = 16
) -> tuple[int, int]:
    """Where the menu's top-left corner goes: beside the icon under the pointer, not
    over it — below a tray at the top of the screen, above one at the bottom, and
    kept on the screen."""
    (px, py), (mw, mh), (sw, sh) = pointer, menu, screen
    y = py + gap if py < sh / 2 else py - gap - mh
    x = px - mw if px + mw > sw else px
    return max(0, min(x, sw - mw)), max(0, min(y, sh - mh))


def build_menu(tk: Any, parent: Any, items: tuple[Item, ...], run_action: Callable) -> Any:
    """A tk.Menu holding `items` (submenus as cascades)."""
    menu = tk.Menu(parent, tearoff=0)
    for item in items:
        if item.separator:
            menu.add_separator()
        elif item.children:
            menu.add_cascade(label=item.text, menu=build_menu(tk, menu, item.children, run_action))
        else:
            action = item.action
            menu.add_command(
                label=item.text,
                state="normal" if item.enabled and action else "disabled",
                command=(lambda a=action: _in_worker(run_action, a)) if action else None,
            )
    return menu


def run_with_popup(
    get_menu: Callable[[], tuple[Item, ...]],
    run_action: Callable[[tuple[str, ...]], None],
    requests: queue.Queue[str],
    stop: threading.Event,
) -> None:
    """Serve popup requests until "quit" arrives or `stop` is set."""
    try:
        import tkinter as tk

        root = tk.Tk(className="syncd")
    except Exception as exc:  # no Tk in this Python, or it cannot open the display
        log.warning("no Tk for the tray menu (%s): a click opens the folder", exc)
        while not stop.is_set():
            try:
                if requests.get(timeout=0.5) == "menu":
                    _in_worker(run_action, ("open_folder",))
            except queue.Empty:
                pass
        return
    root.withdraw()
    current: list[Any] = []

    def show() -> None:
        for old in current:
            old.destroy()
        current.clear()
        menu = build_menu(tk, root, get_menu(), run_action)
        current.append(menu)
        menu.update_idletasks()
        x, y = popup_position(
            root.winfo_pointerxy(),
            (menu.winfo_reqwidth(), menu.winfo_reqheight()),
            (root.winfo_screenwidth(), root.winfo_screenheight()),
        )
        try:
            menu.tk_popup(x, y)
        finally:
            menu.grab_release()

    def pump() -> None:
        while True:
            try:
                request = requests.get_nowait()
            except queue.Empty:
                break
            if request == "quit":
                root.quit()
                return
            if request == "menu":
                show()
        if stop.is_set():
            root.quit()
            return
        root.after(PUMP_MS, pump)

    root.after(PUMP_MS, pump)
    try:
        root.mainloop()
    finally:
        root.destroy()
