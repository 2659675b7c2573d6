"""The directory database's migrations (alembic script directory)."""
