"""The head-to-head's report: a missing contender is reported, never dropped; ratios and
targets come from the same run's samples."""

from __future__ import annotations

from bench.peers.contenders import Rsync, Syncthing
from bench.peers.measure import Sample
from bench.peers.report import build, idle_rows, table_rows, targets
from bench.peers.scenarios import Sizes


def test_a_tool_not_on_path_is_missing_with_its_install_hint(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert "apt-get install syncthing" in (Syncthing(delay=None).missing() or "")
    assert "apt-get install rsync" in (Rsync().missing() or "")


def test_missing_contenders_show_in_every_table_and_ratios_are_syncd_over_peer():
    info = {
        "syncd": {"label": "syncd", "status": "ran", "reason": None},
        "syncthing": {"label": "Syncthing (10 s)", "status": "missing", "reason": "no `syncthing`"},
        "rsync": {"label": "rsync (push)", "status": "ran", "reason": None},
    }
    results = {
        "1": {
            "syncd": [
                Sample(0.1, 100, 100, 300, 0.01, 10 << 20),
                Sample(0.3, 100, 100, 300, 0.03, 10 << 20),
            ],
            "rsync": [Sample(0.4, 200, 200, 250, 0.02, 5 << 20)],
        }
    }
    doc = build(
        meta={"date": "today", "quick": True, "machine": "here", "sizes": {}},
        contenders=info,
        results=results,
        failed={},
        idle={},
        sizes=Sizes.quick(),
    )
    rows = table_rows(doc)
    assert ["1", "Syncthing (10 s)", "missing: no `syncthing`"] in rows
    assert any(r[:2] == ["2", "Syncthing (10 s)"] and r[2].startswith("missing") for r in rows)
    assert any(r[0] == "Syncthing (10 s)" and r[1].startswith("missing") for r in idle_rows(doc))
    ratio = doc["scenarios"]["1"]["ratios"]["rsync"]
    assert ratio["seconds"] == 0.2 / 0.4 and ratio["up"] == 0.5
    (latency, *_rest) = targets(doc, Sizes.quick())
    assert latency["met"] is True and latency["figures"] == "200 ms"
