"""Seeds that once broke an invariant, kept as regression tests (docs/RELIABILITY.md,
"Bugs found"). They run in the default suite, whatever --sim-seeds says."""

from __future__ import annotations

import pytest

from tests.sim.runner import run_seed
from tests.sim.scenario import Plan, Scenario

REGRESSION_SEEDS = {
    10114: "entries pulled at the end of a round that changed nothing were never planned:"
    " a folder replaced by a file on another device stayed a folder here",
    7001: "a folder replaced by a file on one device while others added to it: the file"
    " could not replace the non-empty folder there, and their new files were refused",
    7011: "a folder replaced by a file on one device while another edited inside it: the"
    " server took a file with children; no device could converge",
}


@pytest.mark.parametrize("seed", sorted(REGRESSION_SEEDS))
def test_regression_seed(sim_server, tmp_path, request, seed):
    run_seed(
        "engine", sim_server, request, seed,
        lambda user: Scenario(sim_server, tmp_path, Plan(seed), user),
    )  # fmt: skip
