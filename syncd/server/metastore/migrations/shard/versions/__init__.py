"""Revisions of the shard schema, oldest first (alembic skips this file)."""
