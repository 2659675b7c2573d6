"""Revisions of the directory schema, oldest first (alembic skips this file)."""
