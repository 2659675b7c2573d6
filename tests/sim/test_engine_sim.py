"""Randomized simulation, in process: three real engines on real folders, a real server.

Each seed drives three devices' sync loops (`SyncLoop.tick`) with a fake clock through
random edits, concurrent edits, interleavings inside a cycle, network cuts (drop,
reset and truncate mid-body), crashes at random points and server restarts; then
quiesces and checks the invariants of tests/sim/checks.py. A failure prints the command
that replays its seed.
"""

from __future__ import annotations

from tests.sim.runner import run_seed
from tests.sim.scenario import Plan, Scenario


def test_engine_sim(sim_server, tmp_path, request, engine_seed, sim_ops):
    plan = Plan(engine_seed, **({"ops": sim_ops} if sim_ops else {}))
    run_seed(
        "engine", sim_server, request, engine_seed,
        lambda user: Scenario(sim_server, tmp_path, plan, user),
    )  # fmt: skip
