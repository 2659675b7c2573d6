"""Randomized simulation, in process: three real engines on real folders, a real server.

Each seed drives three devices' sync loops (`SyncLoop.tick`) with a fake clock through
random edits, concurrent edits, interleavings inside a cycle, network cuts (drop,
reset and truncate mid-body), crashes at random points and server restarts; then
quiesces and checks the invariants of tests/sim/checks.py. A failure prints the command
that replays its seed.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter

import pytest

from tests.sim.conftest import record, replay_command
from tests.sim.scenario import PASSWORD, Plan, Scenario

_users = itertools.count()


def run_seed(server, tmp_path, request, seed: int, **plan: object) -> None:
    user = f"sim{seed}x{next(_users)}"
    server.adduser(user, PASSWORD)
    started = time.monotonic()
    scenario = None
    violations: list[str] = []
    error: BaseException | None = None
    try:
        scenario = Scenario(server, tmp_path, Plan(seed, **plan), user)  # type: ignore[arg-type]
        violations = scenario.run()
    except Exception as exc:  # the driver's own failure (no convergence, a crash)
        error = exc
    stats = scenario.stats if scenario else Counter()
    record("engine", seed, not violations and error is None, stats, time.monotonic() - started)
    if violations or error is not None:
        trace = "\n".join(scenario.trace[-80:]) if scenario else ""
        what = "\n".join(violations) if violations else f"{type(error).__name__}: {error}"
        pytest.fail(
            f"seed {seed} broke an invariant:\n{what}\n\n--- last steps:\n{trace}\n\n"
            f"replay: {replay_command(request, seed)}",
            pytrace=error is not None and not isinstance(error, AssertionError),
        )


def test_engine_sim(sim_server, tmp_path, request, engine_seed, sim_ops):
    plan = {"ops": sim_ops} if sim_ops else {}
    run_seed(sim_server, tmp_path, request, engine_seed, **plan)
