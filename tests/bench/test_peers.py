"""The head-to-head harness in its quick mode: every scenario, every contender present
here, and B byte-identical at each step (the harness exits 1 otherwise). No times are
judged."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.peers.__main__ import QUICK_DEADLINE
from bench.peers.scenarios import TITLES


@pytest.mark.timeout(900)  # the harness bounds itself (QUICK_DEADLINE); this is a backstop
def test_quick_mode_runs_every_scenario_and_contender(tmp_path: Path):
    log = tmp_path / "harness.log"
    with log.open("wb") as out:
        try:
            code = subprocess.run(
                [sys.executable, "-m", "bench.peers", "--quick", "--out", str(tmp_path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=QUICK_DEADLINE + 120,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            code = None
    printed = log.read_text(errors="replace")
    assert code == 0, f"exit {code}; the harness printed:\n{printed[-12000:]}"
    doc = json.loads((tmp_path / "peers-quick.json").read_text())
    assert (tmp_path / "peers-quick.md").read_text().startswith("# syncd against")
    tools = {"syncd": True, "syncthing": "syncthing", "syncthing-1s": "syncthing", "rsync": "rsync"}
    for name, tool in tools.items():
        info = doc["contenders"][name]
        if tool is not True and shutil.which(tool) is None:
            assert info["status"] == "missing" and tool in info["reason"]
            continue
        assert info["status"] == "ran", info
        for sid in TITLES:
            row = doc["idle"][name] if sid == "8" else doc["scenarios"][sid]["results"][name]
            if "skipped" in row:  # the 10 s Syncthing runs scenario 1 only in quick mode
                assert name == "syncthing" and sid != "1"
                continue
            assert "failed" not in row, (sid, name, row)
            assert ("rss" in row) if sid == "8" else row["runs"] >= 1, (sid, name, row)
    # every measured change crossed a proxy: bytes were counted for everyone alike
    for name, row in doc["scenarios"]["2"]["results"].items():
        if "up" in row:
            assert row["up"] >= doc["meta"]["sizes"]["big"], name
