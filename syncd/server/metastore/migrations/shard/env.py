"""alembic environment of the shard migrations (see syncd.server.metastore.migrations)."""

from syncd.server.metastore.migrations import run_in_env

run_in_env()
