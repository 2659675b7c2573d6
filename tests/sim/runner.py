"""Run one seed of either simulation, record its figures, fail with the replay command."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.sim.conftest import record, replay_command
from tests.support.server import ServerProc

PASSWORD = "correct horse"
_users = itertools.count()


def run_seed(
    mode: str,
    server: ServerProc,
    request: pytest.FixtureRequest,
    seed: int,
    build: Callable[[str], Any],
) -> None:
    """`build(user)` makes the scenario (for a fresh user); its `run()` returns the
    violated invariants."""
    user = f"sim{mode[0]}{seed}x{next(_users)}"
    server.adduser(user, PASSWORD)
    started = time.monotonic()
    scenario = None
    violations: list[str] = []
    error: BaseException | None = None
    try:
        scenario = build(user)
        violations = scenario.run()
    except Exception as exc:  # the driver's own failure (no convergence, a crash)
        error = exc
    stats = scenario.stats if scenario is not None else Counter()
    record(mode, seed, not violations and error is None, stats, time.monotonic() - started)
    if violations or error is not None:
        trace = "\n".join(scenario.trace[-80:]) if scenario is not None else ""
        what = "\n".join(violations) if violations else f"{type(error).__name__}: {error}"
        pytest.fail(
            f"{mode} seed {seed} broke an invariant:\n{what}\n\n--- last steps:\n{trace}\n\n"
            f"replay: {replay_command(request, seed)}",
            pytrace=error is not None and not isinstance(error, AssertionError),
        )
