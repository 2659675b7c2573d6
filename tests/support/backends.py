"""Fixtures for the scale-out backends: moto (real S3 protocol) and NATS, both real."""

from __future__ import annotations

import secrets
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.services import Moto, Proc, free_port, wait_until

NATS_HOST, NATS_PORT = "127.0.0.1", 4222


def nats_reachable(host: str = NATS_HOST, port: int = NATS_PORT) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    why = Moto.available()
    if why:
        pytest.skip(why)
    server = Moto(tmp_path_factory.mktemp("moto")).start()
    yield server
    server.stop()


@pytest.fixture
def s3_url(moto: Moto) -> str:
    """A fresh bucket on the session's moto server, as a `--blocks` URL."""
    bucket = f"t-{secrets.token_hex(6)}"
    moto.create_bucket(bucket)
    return moto.url(bucket)


@pytest.fixture
def nats_url() -> str:
    """The machine's NATS with a random subject prefix, so runs never cross-talk."""
    if not nats_reachable():
        pytest.skip(f"no NATS server at {NATS_HOST}:{NATS_PORT}")
    return f"nats://{NATS_HOST}:{NATS_PORT}?subject=t{secrets.token_hex(6)}"


@dataclass
class NatsServer:
    """A private nats-server on an ephemeral port: one a test may stop and restart."""

    workdir: Path
    port: int = 0
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        tool = shutil.which("nats-server")
        if tool is None:
            pytest.skip("nats-server not installed (Debian package nats-server)")
        self.port = self.port or free_port()
        argv = [tool, "-a", "127.0.0.1", "-p", str(self.port)]
        self.proc = Proc("nats-server", argv, self.workdir / "nats.log").start()
        wait_until(lambda: self._up(), "nats-server to listen")
        return self

    def _up(self) -> bool:
        assert self.proc is not None
        self.proc.check_alive()
        return nats_reachable("127.0.0.1", self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # an outage, not a goodbye
            self.proc = None


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path)
    yield server
    server.stop()
