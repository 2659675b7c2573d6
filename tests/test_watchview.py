"""`syncd status --watch`: the rendering (pure, on given snapshots) and the non-terminal
outputs against a real daemon doing its initial sync of real files."""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
import sys

from rich.console import Console

from syncd.watchview import Rates, json_record, plain_line, rich_view
from tests.support.devices import HEADLESS_ENV, DeviceProc, wait_for

_users = itertools.count()
NOW = 1_800_000_000.0


def snap(t: float, up_done: int, phase: str = "initial", **kw) -> dict:
    return {
        "state": "syncing",
        "now": t,
        "folder": "/home/ann/Sync",
        "progress": {
            "phase": phase,
            "started": NOW,
            "up": {
                "files_done": 1,
                "files_total": 4,
                "bytes_done": up_done,
                "bytes_total": 4_000_000,
            },
            "down": {"files_done": 0, "files_total": 0, "bytes_done": 0, "bytes_total": 0},
        },
        "recent": [{"path": "docs/a.txt", "direction": "up", "action": "uploaded", "time": t}],
        **kw,
    }


def test_rate_and_eta_come_from_the_bytes_done_over_time():
    rates = Rates()
    first = rates.observe(snap(NOW, 0))
    assert first["up"] == {"rate": None, "eta": None}
    later = rates.observe(snap(NOW + 2, 2_000_000))
    assert later["up"]["rate"] == 1_000_000 and later["up"]["eta"] == 2.0
    assert later["down"]["eta"] is None  # nothing to download


def test_plain_and_json_lines():
    rates = Rates()
    rates.observe(snap(NOW, 0))
    s = snap(NOW + 2, 2_000_000)
    derived = rates.observe(s)
    line = plain_line(s, derived)
    assert line.endswith(
        "Initial sync: 3 files — 2.0 MB left | up 1/4 files, 2.0 MB/4.0 MB, 1.0 MB/s, ETA 2 s"
    )
    assert "down" not in line  # idle directions are left out
    record = json_record(s, derived)
    assert record["rate"] == {"up": 1_000_000, "down": None} and record["eta"]["up"] == 2.0
    json.dumps(record)  # serialisable


def test_the_terminal_view_has_bars_rate_eta_and_recent_changes():
    rates = Rates()
    rates.observe(snap(NOW, 0))
    s = snap(NOW + 2, 2_000_000)
    out = io.StringIO()
    Console(file=out, width=110, force_terminal=False).print(rich_view(s, rates.observe(s)))
    text = out.getvalue()
    assert "Initial sync: 3 files — 2.0 MB left" in text
    assert "Initial sync ↑" in text and "1/4 files" in text
    assert "2.0/4.0 MB" in text and "1.0 MB/s" in text and "ETA 2 s" in text
    assert "uploaded docs/a.txt" in text and "Folder: /home/ann/Sync" in text
    out = io.StringIO()
    Console(file=out, width=110).print(rich_view(snap(NOW, 0, phase="sync"), rates.observe(s)))
    assert "Uploading" in out.getvalue()


def test_watch_follows_a_real_initial_sync_in_plain_text_and_json(server, tmp_path):
    """The daemon starts while the server is down (so the initial sync cannot be over
    before the watcher looks), then the server comes back."""
    user = f"watch{next(_users)}"
    server.adduser(user)
    device = DeviceProc("desk", server)
    try:
        device.link(user)
        for i in range(12):
            (device.folder / f"f{i:02}.bin").write_bytes(os.urandom(200_000))
        server.stop()
        device.start()
        wait_for(lambda: device.status()["state"] == "offline", "offline at start")
        env = {**os.environ, **HEADLESS_ENV}
        cmd = [
            sys.executable,
            "-m",
            "syncd",
            "--home",
            str(device.home),
            "status",
            "--watch",
            "--interval",
            "0.2",
            "--until-idle",
        ]
        as_json = subprocess.Popen([*cmd, "--json"], stdout=subprocess.PIPE, text=True, env=env)
        plain = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        server.start()  # same port: the daemon's next retry gets through
        records = [json.loads(line) for line in as_json.communicate(timeout=120)[0].splitlines()]
        lines = plain.communicate(timeout=120)[0].splitlines()
        assert as_json.returncode == plain.returncode == 0
    finally:
        if server.proc is None:
            server.start()
        device.cleanup()
    states = [r["state"] for r in records]
    assert states[0] == "offline" and states[-1] == "up to date" and "syncing" in states
    initial = [
        r
        for r in records
        if r["progress"]["phase"] == "initial" and r["progress"]["up"]["files_total"] == 12
    ]
    assert initial, records
    assert all(r["progress"]["up"]["bytes_total"] == 2_400_000 for r in initial)
    assert lines[0].split(" ", 1)[1].startswith("Offline since")
    assert any(
        "Initial sync: " in line and "up " in line and "/12 files" in line for line in lines
    ), lines
    assert lines[-1].endswith("Up to date")


def test_watch_without_a_daemon_exits_3(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "syncd", "--home", str(tmp_path), "status", "--watch"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 3 and "not running" in out.stderr
