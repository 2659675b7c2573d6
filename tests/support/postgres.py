"""Throwaway databases in the local PostgreSQL server, for tests.

The server is `$SYNCD_TEST_PG` (default postgresql://postgres@127.0.0.1:5432, trust
auth). Every database a test creates is named `$SYNCD_TEST_PG_PREFIX` + a name (prefix
default `test_`: `test_directory`, `test_shard0`…), so concurrent test runs on one
server (another worktree, say) stay apart by choosing another prefix. Databases are
dropped again at the end; a leftover from a killed run is dropped before it is reused.
"""

from __future__ import annotations

import os
from functools import cache

import psycopg
import pytest

ADMIN_URL = os.environ.get("SYNCD_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
PREFIX = os.environ.get("SYNCD_TEST_PG_PREFIX", "test_")


@cache
def unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""
    try:
        with psycopg.connect(f"{ADMIN_URL}/postgres", connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {ADMIN_URL} is not reachable ({exc.__class__.__name__}: {exc})"
    return None


def require() -> None:
    reason = unavailable()
    if reason:
        pytest.skip(reason)


def url(name: str) -> str:
    return f"{ADMIN_URL}/{PREFIX}{name}"


def _admin(sql: str) -> None:
    with psycopg.connect(f"{ADMIN_URL}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def create(name: str) -> str:
    """A new, empty database PREFIX+name (any old one dropped first); its URL."""
    full = f"{PREFIX}{name}"
    _admin(f'DROP DATABASE IF EXISTS "{full}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{full}"')
    return url(name)


def empty(name: str) -> str:
    """Make the existing database PREFIX+name empty again (faster than a new one)."""
    with psycopg.connect(url(name), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return url(name)


def drop(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{PREFIX}{name}" WITH (FORCE)')


def query(db_url: str, sql: str, args: tuple = ()) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, args).fetchall()
