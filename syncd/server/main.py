"""Running the server and administering users from the command line."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from syncd.server.app import create_app
from syncd.server.auth import hash_password
from syncd.server.config import ServerConfig
from syncd.server.metastore import User, open_metastore

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True)
class TLS:
    cert: Path  # certificate chain, PEM
    key: Path  # its private key, PEM


def serve(
    config: ServerConfig, host: str, port: int, log_level: str = "info", tls: TLS | None = None
) -> None:
    """Run in the foreground until Ctrl-C / SIGTERM; one log line per request."""
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)
    log_config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": log_level.upper(), "propagate": False},
            "uvicorn.access": {
                "handlers": ["stderr"],
                "level": log_level.upper(),
                "propagate": False,
            },
        },
    }
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_config=log_config,
        log_level=log_level,
        timeout_graceful_shutdown=3,
        server_header=False,
        ssl_certfile=str(tls.cert) if tls else None,
        ssl_keyfile=str(tls.key) if tls else None,
    )


def add_user(config: ServerConfig, name: str, email: str | None, password: str) -> User:
    if config.meta_url is None:  # the embedded default keeps its SQLite file in the data dir
        config.data.mkdir(parents=True, exist_ok=True)
    meta = open_metastore(config.resolved_meta_url())
    try:
        return meta.create_user(name, email, hash_password(password), config.resolved_chunking())
    finally:
        meta.close()
