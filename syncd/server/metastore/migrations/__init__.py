"""Schema migrations (alembic): one set for the directory database, one for each shard.

`migrate(url, "directory" | "shard")` brings a database to the newest revision; servers
call it on start, so a new database gets its schema by itself. Each set keeps its own
version table, so one database can be both the directory and a shard. Concurrent starts
serialize on a transaction-scoped advisory lock. Queries elsewhere use psycopg directly:
SQLAlchemy is only alembic's runner here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Schema = Literal["directory", "shard"]
HERE = Path(__file__).parent
# The newest revision of each set (a test checks these against the scripts), so that a
# process starting on an up-to-date database need not load alembic at all.
HEADS: dict[str, str] = {"directory": "0001", "shard": "0001"}
# pg_advisory_xact_lock keys (any fixed 64-bit numbers unique to this use)
_LOCK = {"directory": 0x73796E6364_01, "shard": 0x73796E6364_02}


def version_table(schema: Schema) -> str:
    return f"syncd_{schema}_version"


def sqlalchemy_url(url: str) -> str:
    """postgresql://… as SQLAlchemy names the psycopg 3 driver."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return f"postgresql+psycopg://{rest}"


def at_head(url: str, schema: Schema) -> bool:
    """Whether the database at `url` already has the newest `schema` revision."""
    import psycopg

    from syncd.server.metastore.postgres_pool import split_url

    try:
        with psycopg.connect(split_url(url)[0], connect_timeout=10) as conn:
            rows = conn.execute(f"SELECT version_num FROM {version_table(schema)}").fetchall()
    except psycopg.errors.UndefinedTable:
        return False
    except psycopg.OperationalError:
        return False  # migrate() says why
    return [r[0] for r in rows] == [HEADS[schema]]


def migrate(url: str, schema: Schema) -> None:
    """Upgrade the database at `url` to the head of the `schema` migrations."""
    if at_head(url, schema):
        return
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.pool import NullPool

    from syncd.server.metastore.base import MetaStoreUnavailable
    from syncd.server.metastore.postgres_pool import redacted, split_url

    config = Config()
    config.set_main_option("script_location", str(HERE / schema))
    config.attributes["version_table"] = version_table(schema)
    engine = create_engine(sqlalchemy_url(split_url(url)[0]), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK[schema]})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise MetaStoreUnavailable(f"cannot migrate {redacted(url)}: {exc.orig}") from None
    finally:
        engine.dispose()


def run_in_env() -> None:
    """The body of each set's env.py: migrate on the connection migrate() shares."""
    from alembic import context

    config = context.config
    context.configure(
        connection=config.attributes["connection"],
        target_metadata=None,
        version_table=config.attributes["version_table"],
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()
