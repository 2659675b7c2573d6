"""The shard database's migrations (alembic script directory)."""
