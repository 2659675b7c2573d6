"""One PNG per scenario from peers.json: seconds (median, min-max bars) and bytes sent.

python -m bench.peers.charts bench/results/peers.json docs/perf
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def draw(doc: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    labels = {n: c["label"] for n, c in doc["contenders"].items()}
    paths = []
    for sid, sc in doc["scenarios"].items():
        rows = {n: r for n, r in sc["results"].items() if "seconds" in r}
        if not rows:
            continue
        names = list(rows)
        fig, (ax_t, ax_b) = plt.subplots(1, 2, figsize=(10, 3.6))
        med = [rows[n]["seconds"]["median"] for n in names]
        lo = [m - rows[n]["seconds"]["min"] for m, n in zip(med, names, strict=True)]
        hi = [rows[n]["seconds"]["max"] - m for m, n in zip(med, names, strict=True)]
        colors = ["#2a7ab9" if n == "syncd" else "#9a9a9a" for n in names]
        ticks = [labels[n] for n in names]
        ax_t.bar(ticks, med, yerr=[lo, hi], color=colors, capsize=4)
        ax_t.set_ylabel("seconds (median, min-max)")
        ax_t.set_yscale("log")
        ax_t.set_ylim(bottom=min(rows[n]["seconds"]["min"] for n in names) / 4)
        ax_t.set_title("time until B is byte-identical")
        sent = [max(1, rows[n]["up"]) for n in names]
        ax_b.bar(ticks, sent, color=colors)
        ax_b.set_yscale("log")
        ax_b.set_ylim(bottom=min(sent) / 10)  # bars from a decade below the least
        ax_b.set_ylabel("bytes sent by A")
        ax_b.set_title("bytes on the wire (A's side)")
        for ax in (ax_t, ax_b):
            ax.tick_params(axis="x", labelrotation=20)
        fig.suptitle(f"({sid}) {sc['title']}")
        fig.tight_layout()
        path = out / f"peers-{sid}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    idle = {n: r for n, r in doc["idle"].items() if "rss" in r}
    if idle:
        names = list(idle)
        fig, (ax_r, ax_s) = plt.subplots(1, 2, figsize=(10, 3.6))
        colors = ["#2a7ab9" if n == "syncd" else "#9a9a9a" for n in names]
        ticks = [labels[n] for n in names]
        ax_r.bar(ticks, [max(idle[n]["rss"].values()) / 2**20 for n in names], color=colors)
        ax_r.set_ylabel("MiB")
        ax_r.set_title("idle RSS (largest daemon)")
        ax_s.bar(ticks, [idle[n]["restart_median"] for n in names], color=colors)
        ax_s.set_ylabel("seconds")
        ax_s.set_title("restart to up to date")
        for ax in (ax_r, ax_s):
            ax.tick_params(axis="x", labelrotation=20)
        fig.suptitle("(8) " + "100,000 small files: idle, restart")
        fig.tight_layout()
        path = out / "peers-8.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in draw(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2])):
        print(p)
