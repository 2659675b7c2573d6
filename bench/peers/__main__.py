"""python -m bench.peers [--quick] [--out DIR] [--charts DIR] [--only NAME ...]

Runs syncd, Syncthing (default 10 s watcher delay, and 1 s) and rsync on the same
scenarios on this machine, prints one table with the ratios of syncd to each, and writes
DIR/peers.json and DIR/peers.md (default bench/results; with --quick, peers-quick.*).
A contender that cannot run here is reported as missing. --quick runs tiny versions of
every scenario and checks only that B ends byte-identical (it exits 1 otherwise); it
never judges times.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.peers.contenders import Contender, all_contenders
from bench.peers.contenders.base import cap_waits
from bench.peers.measure import tree_digest
from bench.peers.report import build, idle_rows, markdown, table_rows, target_lines, text_table
from bench.peers.scenarios import QUICK_SKIP, STALLED, IdleResult, Run, Sizes, idle

SCENARIOS = ["1", "2", "3", "4", "5", "6", "7", "8"]
QUICK_WAIT = 90.0  # seconds: the most any one wait of the quick mode takes
QUICK_DEADLINE = 540.0  # seconds: the quick mode dumps its threads and exits past this
STARTED = time.monotonic()


def log(msg: str) -> None:
    print(msg, flush=True)


def step(msg: str) -> None:
    """A progress line, with the seconds since the harness started."""
    log(f"[{time.monotonic() - STARTED:6.1f} s] {msg}")


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{platform.platform()}, {os.cpu_count()} cores, load {load[0]:.1f}/{load[1]:.1f}"
        f"/{load[2]:.1f} at start, Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.split("\n\n")[1])
    ap.add_argument("--quick", action="store_true", help="tiny sizes; assert correctness only")
    ap.add_argument("--out", type=Path, help="where peers.json and peers.md go")
    ap.add_argument("--charts", type=Path, help="also draw one PNG per scenario here")
    ap.add_argument("--only", nargs="+", help="contenders to run (default: all)")
    ap.add_argument("--scenarios", nargs="+", default=SCENARIOS, choices=SCENARIOS)
    ap.add_argument("--repeat", type=int, help="runs of scenarios 2-7 and of the restart")
    ap.add_argument("--idle-files", type=int)
    ap.add_argument("--idle-seconds", type=float)
    args = ap.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    overrides = {
        k: v
        for k, v in (
            ("repeat", args.repeat),
            ("idle_files", args.idle_files),
            ("idle_seconds", args.idle_seconds),
        )
        if v is not None
    }
    if overrides:
        sizes = Sizes(**{**sizes.__dict__, **overrides})
    out = args.out or Path("bench/results")
    stem = "peers-quick" if args.quick else "peers"

    contenders = [c for c in all_contenders() if not args.only or c.name in args.only]
    info: dict[str, dict] = {}
    ready: list[Contender] = []
    for c in contenders:
        why = c.missing()
        info[c.name] = {"label": c.label, "status": "missing" if why else "ran", "reason": why}
        if why:
            log(f"MISSING {c.label}: {why}")
        else:
            info[c.name]["version"] = c.version()
            ready.append(c)
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "machine": machine(),
        "sizes": sizes.__dict__,
    }
    tmp = Path(tempfile.mkdtemp(prefix="sd-peers-"))
    started = time.monotonic()
    if args.quick:
        # a smoke run of seconds: a contender that stalls fails within minutes, and if
        # anything hangs regardless, every thread's stack is printed before exiting
        cap_waits(QUICK_WAIT)
        faulthandler.dump_traceback_later(QUICK_DEADLINE, exit=True)
    try:
        if args.quick:  # times are not judged: run the contenders side by side
            parts = [Part(c, tmp, sizes, args.scenarios, info) for c in ready]
            threads = [threading.Thread(target=p.run) for p in parts]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        else:
            parts = [Part(ready, tmp, sizes, args.scenarios, info)]  # type: ignore[arg-type]
            parts[0].run()
    finally:
        faulthandler.cancel_dump_traceback_later()
        shutil.rmtree(tmp, ignore_errors=True)
    results, failed, idle_results = merge(parts)
    meta["minutes"] = round((time.monotonic() - started) / 60, 1)
    doc = build(
        meta=meta,
        contenders=info,
        results=results,
        failed=failed,
        idle=idle_results,
        sizes=sizes,
    )
    doc["failed"] = failed
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / f"{stem}.md").write_text(markdown(doc))
    log("")
    log(text_table(table_rows(doc)))
    log("")
    log(text_table(idle_rows(doc)))
    log("")
    if not args.quick:
        for line in target_lines(doc):
            log(line)
    if args.charts:
        from bench.peers.charts import draw

        for path in draw(doc, args.charts):
            log(f"chart: {path}")
    log(f"wrote {out / stem}.json and .md")
    real = {
        sid: {n: why for n, why in by.items() if why != QUICK_SKIP} for sid, by in failed.items()
    }
    bad = {k: v for k, v in real.items() if v} or {
        k: v for k, v in idle_results.items() if isinstance(v, str)
    }
    if bad:
        log(f"FAILED: {json.dumps(bad)}")
        return 1
    return 0


class Part:
    """Scenarios 1-7 over some contenders (interleaved), then 8 on each afresh."""

    def __init__(
        self,
        cs: Contender | list[Contender],
        tmp: Path,
        sizes: Sizes,
        scenarios: list[str],
        info: dict[str, dict],
    ) -> None:
        self.cs = cs if isinstance(cs, list) else [cs]
        self.tmp, self.sizes, self.info = tmp, sizes, info
        self.scenarios = scenarios
        self.run_ = Run([], sizes, log)
        self.idle: dict[str, IdleResult | str] = {}

    def run(self) -> None:
        run = self.run_
        try:
            wanted = [s for s in SCENARIOS if s in self.scenarios and s != "8"]
            if wanted:
                for c in self.cs:
                    if start(c, self.tmp / c.name):
                        run.cs.append(c)
                    else:
                        self.info[c.name].update(status="failed", reason=c.start_error)
                for sid in wanted:
                    step(f"scenario {sid} ({', '.join(c.name for c in run.cs)})")
                    run.step(sid)
                for c in run.cs:
                    if tree_digest(c.a) != tree_digest(c.b):
                        run.failed.setdefault("end", {})[c.name] = "A and B differ at the end"
                        log(f"  {c.name}: A and B DIFFER after scenarios {' '.join(wanted)}")
                    c.stop()
            if "8" in self.scenarios:
                fresh = {c.name: c for c in all_contenders()}
                for old in self.cs:
                    if self.info[old.name]["status"] != "ran" or not run.wants(old, "8"):
                        continue
                    if old.name in run.stalled:
                        self.idle[old.name] = STALLED
                        continue
                    step(f"scenario 8 ({old.name})")
                    c = fresh[old.name]
                    try:
                        if not start(c, self.tmp / f"{c.name}-idle"):
                            raise RuntimeError(c.start_error)
                        self.idle[c.name] = idle(c, self.sizes, log)
                    except Exception as exc:
                        self.idle[c.name] = f"{type(exc).__name__}: {exc}"
                        log(f"  8 {c.name}: FAILED {exc}")
                    finally:
                        c.stop()
        finally:
            for c in run.cs:
                c.stop()


def start(c: Contender, base: Path, tries: int = 2) -> bool:
    """Start `c` in `base`; a start that fails (a peer that never connects on a loaded
    machine) is stopped, logged and tried once more afresh. The last error stays in
    `c.start_error`."""
    for attempt in range(1, tries + 1):
        step(f"starting {c.label}" + (f" (try {attempt})" if attempt > 1 else ""))
        try:
            c.start(base / f"try-{attempt}")
            return True
        except Exception as exc:
            c.start_error = f"did not start: {type(exc).__name__}: {exc}"
            log(f"FAILED to start {c.label}: {exc}")
            c.stop()
    return False


def merge(parts: list[Part]) -> tuple[dict, dict, dict]:
    results: dict = {}
    failed: dict = {}
    idle_results: dict = {}
    for p in parts:
        for sid, by in p.run_.results.items():
            results.setdefault(sid, {}).update(by)
        for sid, by in p.run_.failed.items():
            failed.setdefault(sid, {}).update(by)
        idle_results.update(p.idle)
    return results, failed, idle_results


if __name__ == "__main__":
    sys.exit(main())
