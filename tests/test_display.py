"""Status snapshots as words: the one-line status (tray, watch), sizes, rate and ETA."""

from __future__ import annotations

import time

import pytest

from syncd.display import RateMeter, duration, human_size, short_clock, status_line, totals

NOW = time.mktime((2026, 3, 3, 14, 30, 0, 0, 0, -1))


def snap(state: str, **kw) -> dict:
    return {"state": state, **kw}


def progress(phase="sync", up=(0, 0, 0, 0), down=(0, 0, 0, 0)) -> dict:
    keys = ("files_done", "files_total", "bytes_done", "bytes_total")
    return {
        "phase": phase,
        "up": dict(zip(keys, up, strict=False)),
        "down": dict(zip(keys, down, strict=False)),
    }


@pytest.mark.parametrize(
    ("st", "line"),
    [
        (snap("up to date"), "Up to date"),
        (snap("syncing", progress=progress(up=(3, 10, 0, 0), down=(0, 5, 1_000_000, 36_000_000))),
         "Syncing 12 files — 35.0 MB left"),
        (snap("syncing", progress=progress(up=(0, 1, 0, 10))), "Syncing 1 file — 10 B left"),
        (snap("syncing", progress=progress(up=(0, 2, 0, 0))), "Syncing 2 files"),
        (snap("syncing", progress=progress("initial", down=(1, 3, 0, 2000))),
         "Initial sync: 2 files — 2.0 KB left"),
        (snap("syncing", progress=progress()), "Looking for changes…"),
        (snap("paused"), "Paused"),
        (snap("offline", offline_since=NOW - 28 * 60), "Offline since 14:02"),
        (snap("offline", offline_since=NOW - 86400), "Offline since Mar 2 14:30"),
        (snap("error", error={"path": "a.txt", "reason": "disk full"}), "Error: a.txt: disk full"),
        (snap("error", error={"path": "", "reason": "token revoked"}), "Error: token revoked"),
        (snap("not running"), "syncd is not running"),
    ],
)  # fmt: skip
def test_status_line(st, line):
    assert status_line(st, NOW) == line


def test_totals_sum_the_directions():
    t = totals({"progress": progress(up=(1, 2, 10, 20), down=(3, 4, 30, 40))})
    assert (t.files_done, t.files_total, t.bytes_left, t.files_left) == (4, 6, 20, 2)
    assert totals({}).files_total == 0


def test_sizes_times_and_durations():
    assert [human_size(n) for n in (999, 1000, 35_000_000, 10**13)] == [
        "999 B", "1.0 KB", "35.0 MB", "10.0 TB"]  # fmt: skip
    assert short_clock(NOW, NOW) == "14:30"
    assert [duration(s) for s in (0.4, 42, 185, 7800)] == ["0 s", "42 s", "3 min 05 s",
                                                          "2 h 10 min"]  # fmt: skip


def test_rate_meter_over_a_window_with_given_times():
    m = RateMeter(window=10)
    assert m.rate() is None and m.eta(100) is None
    m.add(0.0, 0)
    m.add(2.0, 2_000_000)
    assert m.rate() == 1_000_000
    assert m.eta(5_000_000) == 5.0 and m.eta(0) == 0.0
    for t in range(3, 30):
        m.add(float(t), 2_000_000 + (t - 2) * 500_000)
    assert m.rate() == pytest.approx(500_000)  # old samples dropped
    m.add(31.0, 0)  # a new batch: start over
    assert m.rate() is None
