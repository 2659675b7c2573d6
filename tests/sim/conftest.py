"""Seeds for the simulation (`--sim-seeds`, `--sim-seed`), its server, and its figures."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProc

ENGINE_SEEDS = 40  # the default suite's in-process seeds (about two minutes)
DAEMON_SEEDS = 1  # ... and seeds with real daemons (about a minute)
DAEMONS_PER_ENGINE_SEED = 1 / 25  # with --sim-seeds=N: N in process, N/25 with daemons

RUNS: list[dict] = []  # one record per seed run: mode, seed, outcome, figures


def _seeds(config: pytest.Config, default: int, per_seed: float) -> list[int]:
    one = config.getoption("--sim-seed")
    if one is not None:
        return [one]
    asked = config.getoption("--sim-seeds")
    count = default if asked is None else max(1, math.ceil(asked * per_seed))
    first = config.getoption("--sim-first-seed")
    return list(range(first, first + count))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine_seed" in metafunc.fixturenames:
        seeds = _seeds(metafunc.config, ENGINE_SEEDS, 1.0)
        metafunc.parametrize("engine_seed", seeds, ids=[f"seed{s}" for s in seeds])
    if "daemon_seed" in metafunc.fixturenames:
        seeds = _seeds(metafunc.config, DAEMON_SEEDS, DAEMONS_PER_ENGINE_SEED)
        metafunc.parametrize("daemon_seed", seeds, ids=[f"seed{s}" for s in seeds])


@pytest.fixture(scope="session")
def sim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    """The simulation's own server: its runs restart and kill it."""
    proc = ServerProc(tmp_path_factory.mktemp("sim-server") / "data").start()
    yield proc
    proc.stop()


@pytest.fixture
def sim_ops(request: pytest.FixtureRequest) -> int | None:
    return request.config.getoption("--sim-ops")


def replay_command(request: pytest.FixtureRequest, seed: int) -> str:
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    if not {"engine_seed", "daemon_seed"} & set(params):  # a regression seed: its own test
        return f".venv/bin/pytest '{request.node.nodeid}' -p no:randomly"
    node = request.node.nodeid.split("[")[0]
    ops = request.config.getoption("--sim-ops")
    extra = f" --sim-ops={ops}" if ops else ""
    return f".venv/bin/pytest '{node}' --sim-seed={seed}{extra} -p no:randomly"


def record(mode: str, seed: int, ok: bool, stats: Counter, seconds: float) -> None:
    RUNS.append({"mode": mode, "seed": seed, "ok": ok, "seconds": round(seconds, 2),
                 "stats": dict(stats)})  # fmt: skip


def _summary() -> dict:
    total: Counter[str] = Counter()
    for run in RUNS:
        total.update(run["stats"])
    modes = Counter(run["mode"] for run in RUNS)
    failed = [{"mode": r["mode"], "seed": r["seed"]} for r in RUNS if not r["ok"]]
    return {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seeds_run": dict(modes),
        "failed": failed,
        "seconds": round(sum(r["seconds"] for r in RUNS), 1),
        "totals": dict(sorted(total.items())),
        "runs": RUNS,
    }


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not RUNS:
        return
    summary = _summary()
    path = config.getoption("--sim-report")
    if path is None:
        path = Path(str(config._tmp_path_factory.getbasetemp())) / "sim-summary.json"  # type: ignore[attr-defined]
    Path(path).write_text(json.dumps(summary, indent=1) + "\n")
    t = summary["totals"]
    ops = sum(v for k, v in t.items() if k.startswith("op_") and k != "op_failed")
    terminalreporter.write_line(
        f"sim: {summary['seeds_run']} seeds, {ops} user operations, {faults(t)} faults, "
        f"{t.get('invariant_checks', 0)} invariant checks, {len(summary['failed'])} failed; "
        f"figures in {path}"
    )


def faults(t: dict) -> int:
    """Faults injected: outages, stalls, cuts that fired, crashes, server restarts (the
    resets of each connection during an outage are counted as the outage)."""
    kinds = ("fault_offline", "fault_stall_or_delay", "proxy_fault_reset",
             "proxy_fault_truncate", "crash_idle", "crash_mid_cycle", "crash_kill9",
             "server_restart", "server_kill9")  # fmt: skip
    return sum(t.get(k, 0) for k in kinds)
