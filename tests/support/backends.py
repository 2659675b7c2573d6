"""Fixtures for the scale-out backends: moto (real S3 protocol) and NATS, both real."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator

import pytest

from deploy.services import Moto

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
