"""Profile syncd's processes (server, daemon A, daemon B) with py-spy during one run of a
scenario, and print where each spends its time.

    python -m bench.peers.profile [--scenario 5] [--out DIR]

Needs py-spy (`pip install py-spy`; sampling needs ptrace, i.e. root or
kernel.yama.ptrace_scope=0). Writes DIR/<process>.txt (collapsed stacks) and prints, per
process, the functions with the most samples on the stack (inclusive) and at its top
(self).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.peers.contenders import Syncd
from bench.peers.scenarios import Run, Sizes


def summarize(collapsed: Path, top: int = 15) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1] for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    if not total:
        return "  (no samples)"
    lines = [f"  {total} samples; inclusive:"]
    lines += [f"    {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    lines.append("  self:")
    lines += [f"    {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="5", choices=list("1234567"))
    ap.add_argument("--out", type=Path, default=Path("bench/results/profile"))
    ap.add_argument("--rate", type=int, default=200, help="samples per second")
    args = ap.parse_args()
    if shutil.which("py-spy") is None and not (Path(sys.executable).parent / "py-spy").exists():
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = Sizes(repeat=1, latency_runs=3)
    tmp = Path(tempfile.mkdtemp(prefix="sd-profile-"))
    c = Syncd()
    try:
        print("starting syncd", flush=True)
        c.start(tmp / "syncd")
        print("started", flush=True)
        run = Run([c], sizes, print)
        if args.scenario in "347":
            run.step("2")  # they edit or copy the big file
        names = {"server": c.roots()[0], "daemon-A": c.roots()[1], "daemon-B": c.roots()[2]}
        spies = {
            name: subprocess.Popen(
                [
                    *(spy, "record", "--pid", str(pid), "--rate", str(args.rate)),
                    *("--format", "raw", "--output", str(args.out / f"{name}.txt")),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name, pid in names.items()
        }
        run.step(args.scenario)
        for p in spies.values():
            p.send_signal(2)  # SIGINT: py-spy writes its output and exits
        for p in spies.values():
            p.wait(60)
        for name in names:
            print(f"\n== {name}")
            print(summarize(args.out / f"{name}.txt"))
    finally:
        c.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
