"""Shared fixtures: real server processes on 127.0.0.1 with ephemeral ports."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from tests.support.server import ServerProc, Session, login

pytest_plugins = ["tests.support.backends"]  # moto (S3), NATS: the scale-out backends
_names = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    proc = ServerProc(tmp_path_factory.mktemp("server") / "data").start()
    yield proc
    proc.stop()


@pytest.fixture
def new_user(server: ServerProc) -> Callable[..., Session]:
    """Create a fresh user on the module's server and log a device in."""

    def make(device: str = "dev") -> Session:
        name = f"user{next(_names)}"
        server.adduser(name)
        return login(server, name, device=device)

    return make


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sim", "randomized multi-device simulation (tests/sim)")
    group.addoption("--sim-seeds", type=int, default=None, help="how many seeds to run")
    group.addoption("--sim-seed", type=int, default=None, help="replay this one seed")
    group.addoption("--sim-first-seed", type=int, default=1, help="first of the seeds run")
    group.addoption("--sim-ops", type=int, default=None, help="driver steps per seed")
    group.addoption("--sim-report", default=None, help="write the run's figures (JSON) here")
