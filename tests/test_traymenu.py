"""The tray menu as data, for each daemon state."""

from __future__ import annotations

from syncd.traymenu import NOT_RUNNING, SEPARATOR, menu_model, recent_paths, shorten, tooltip

NOW = 1_800_000_000.0


def texts(items) -> list[str]:
    return [i.text for i in items]


def base(**kw) -> dict:
    return {"state": "up to date", "folder": "/home/ann/Sync", "recent": [], **kw}


def test_up_to_date_menu_in_the_issue_order():
    items = menu_model(base(), NOW)
    assert texts(items) == [
        "Up to date", "-", "Open folder", "Recent changes", "Pause syncing", "Open log", "-",
        "Quit syncd", "Close tray",
    ]  # fmt: skip
    assert not items[0].enabled  # the status line is information, not a button
    assert [i.action for i in items if i.action] == [
        ("open_folder",), ("pause",), ("open_log",), ("quit",), ("close",)]  # fmt: skip
    recent = items[3]
    assert texts(recent.children) == ["Nothing synced yet"] and not recent.children[0].enabled
    assert SEPARATOR in items


def test_syncing_shows_progress_and_paused_offers_resume():
    progress = {"phase": "sync", "up": {"files_done": 0, "files_total": 12, "bytes_done": 0,
                                        "bytes_total": 35_000_000}, "down": {}}  # fmt: skip
    assert menu_model(base(state="syncing", progress=progress), NOW)[0].text == (
        "Syncing 12 files — 35.0 MB left"
    )
    paused = menu_model(base(state="paused"), NOW)
    assert "Resume syncing" in texts(paused) and "Pause syncing" not in texts(paused)
    assert ("resume",) in [i.action for i in paused]
    assert tooltip(base(state="paused"), NOW) == "syncd — Paused"


def test_recent_changes_are_the_last_five_paths_and_open_their_folder():
    recent = [{"path": f"docs/f{i}.txt", "direction": "up" if i % 2 else "down"}
              for i in range(8)]  # fmt: skip
    recent.insert(1, {"path": "docs/f0.txt", "direction": "up"})  # a repeat: listed once
    items = menu_model(base(recent=recent), NOW)
    sub = next(i for i in items if i.text == "Recent changes").children
    assert [c.action for c in sub] == [("reveal", f"docs/f{i}.txt") for i in range(5)]
    assert sub[0].text == "↓ docs/f0.txt" and sub[1].text == "↑ docs/f1.txt"
    assert [c["path"] for c in recent_paths({"recent": recent}, 2)] == ["docs/f0.txt",
                                                                       "docs/f1.txt"]  # fmt: skip


def test_conflicts_appear_only_when_there_are_any():
    assert not any(t.startswith("Conflicts") for t in texts(menu_model(base(), NOW)))
    paths = [f"a (conflicted copy from desk 2026-03-0{i}).txt" for i in range(1, 4)]
    items = menu_model(base(conflict_count=13, conflicts=paths), NOW)
    conflicts = next(i for i in items if i.text == "Conflicts (13)")
    assert [c.action for c in conflicts.children[:3]] == [("reveal", p) for p in paths]
    assert conflicts.children[-1].text == "… and 10 more"
    assert texts(items).index("Conflicts (13)") < texts(items).index("Open log")


def test_not_running_says_so_and_offers_to_start():
    items = menu_model({**NOT_RUNNING, "folder": "/home/ann/Sync"}, NOW)
    assert texts(items) == ["syncd is not running", "Start syncd", "-", "Open folder",
                            "Open log", "-", "Close tray"]  # fmt: skip
    assert items[1].action == ("start",)
    assert not menu_model(NOT_RUNNING, NOW)[3].enabled  # no folder known: nothing to open


def test_long_paths_are_cut_in_the_middle_keeping_the_name():
    assert shorten("a/b.txt") == "a/b.txt"
    cut = shorten("projects/2026/clients/very-long-client-name/reports/q1/summary.pdf", 40)
    assert len(cut) <= 40 and cut.endswith("/summary.pdf") and "…" in cut
    long_name = shorten("x" * 100, 20)
    assert len(long_name) == 20 and long_name.startswith("x") and "…" in long_name


def test_the_popup_opens_beside_the_icon_and_stays_on_screen():
    from syncd.traypopup import popup_position

    screen = (800, 480)
    assert popup_position((787, 16), (150, 190), screen) == (637, 32)  # top-right tray
    assert popup_position((20, 470), (150, 190), screen) == (20, 264)  # bottom-left panel
    assert popup_position((400, 10), (900, 600), screen) == (0, 0)  # bigger than the screen
