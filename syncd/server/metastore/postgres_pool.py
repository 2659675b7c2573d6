"""One PostgreSQL database behind a psycopg connection pool, with errors converted.

A URL is a libpq URI (`postgresql://USER@HOST:PORT/DB?sslmode=…`) plus two options of
our own, taken off before libpq sees it: `pool_min` (default 1) and `pool_max`
(default 10) connections per server process.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool

from syncd.server.metastore.base import MetaStoreUnavailable

POOL_OPTIONS = {"pool_min": 1, "pool_max": 10}


def split_url(url: str) -> tuple[str, dict[str, int]]:
    """(the libpq URI without our options, {pool_min, pool_max})."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    options = dict(POOL_OPTIONS)
    rest = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in options:
            try:
                options[key] = int(value)
            except ValueError:
                raise ValueError(f"{url!r}: {key} must be a number") from None
        else:
            rest.append((key, value))
    if not 1 <= options["pool_min"] <= options["pool_max"]:
        raise ValueError(f"{url!r}: need 1 <= pool_min <= pool_max")
    return urlunsplit(parts._replace(query=urlencode(rest, quote_via=quote))), options


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


class Database:
    """A pool of connections to one database; `tx()` is one transaction, `auto()` not."""

    def __init__(self, url: str) -> None:
        self.url = url
        conninfo, options = split_url(url)
        self.conninfo = conninfo
        self._pool = ConnectionPool(
            conninfo,
            min_size=options["pool_min"],
            max_size=options["pool_max"],
            open=False,
            kwargs={"autocommit": True},
            name=redacted(conninfo),
        )
        try:
            self._pool.open(wait=True, timeout=10)
        except psycopg.OperationalError as exc:
            self._pool.close()
            raise MetaStoreUnavailable(f"cannot connect to {redacted(url)}: {exc}") from None

    @contextmanager
    def tx(self) -> Iterator[psycopg.Connection]:
        """A connection in a transaction: committed at the end, rolled back on error."""
        with self.auto() as conn, conn.transaction():
            yield conn

    @contextmanager
    def auto(self) -> Iterator[psycopg.Connection]:
        """A connection in autocommit: each statement is a transaction of its own (one
        round trip for a lone query, where a transaction would add BEGIN and COMMIT)."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.OperationalError as exc:
            raise MetaStoreUnavailable(f"{redacted(self.url)}: {exc}") from None

    def close(self) -> None:
        self._pool.close()
