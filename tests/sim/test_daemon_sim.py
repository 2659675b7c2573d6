"""Randomized simulation with real daemons: three `syncd start --foreground` processes
behind fault proxies, real kill -9 at random moments, real server restarts and kills;
then quiescence and the invariants of tests/sim/checks.py."""

from __future__ import annotations

from tests.sim.daemons import DaemonScenario
from tests.sim.runner import PASSWORD, run_seed

DAEMON_OPS = 40


def test_daemon_sim(sim_server, request, daemon_seed, sim_ops):
    ops = sim_ops or DAEMON_OPS
    run_seed(
        "daemons", sim_server, request, daemon_seed,
        lambda user: DaemonScenario(sim_server, user, PASSWORD, daemon_seed, ops),
    )  # fmt: skip
