"""bench.rebuild at a tiny size, so it cannot rot: it checks that the rebuilt file is the
new version (and exits non-zero otherwise); no time is judged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_rebuild_bench_runs_and_rebuilds_the_new_version(tmp_path: Path):
    out = subprocess.run(
        [sys.executable, "-m", "bench.rebuild", "--mib", "4", "--runs", "2"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "rebuild / copy:" in out.stdout
    assert list(tmp_path.iterdir()) == []  # its temp folder is gone
