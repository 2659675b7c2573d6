"""A shard: its namespaces' heads, journals, current trees, op ids and chunk references.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- The head of each namespace's journal held here. seq: its last sequence number
        -- (the row lock serializes committers); frozen: a reshard is copying it away,
        -- writes are refused. (Table names differ from the directory's: one database
        -- may be both.)
        CREATE TABLE heads (
            id BIGINT PRIMARY KEY,
            seq BIGINT NOT NULL DEFAULT 0,
            frozen BOOLEAN NOT NULL DEFAULT false);
        CREATE TABLE journal (
            ns BIGINT NOT NULL,
            seq BIGINT NOT NULL,
            path TEXT COLLATE "C" NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('file', 'dir')),
            deleted BOOLEAN NOT NULL,
            size BIGINT NOT NULL,
            mode INTEGER NOT NULL,
            mtime_ns BIGINT NOT NULL,
            blocks TEXT NOT NULL,
            "user" TEXT NOT NULL,
            device TEXT NOT NULL,
            op_id TEXT,
            server_time DOUBLE PRECISION NOT NULL,
            prev_rev BIGINT,
            PRIMARY KEY (ns, seq));
        CREATE INDEX journal_path ON journal(ns, path, seq);
        -- The newest entry of each path: folder listings and the paged tree.
        CREATE TABLE current (
            ns BIGINT NOT NULL,
            path TEXT COLLATE "C" NOT NULL,
            parent TEXT COLLATE "C" NOT NULL,
            seq BIGINT NOT NULL,
            deleted BOOLEAN NOT NULL,
            PRIMARY KEY (ns, path));
        CREATE INDEX current_parent ON current(ns, parent, path) WHERE NOT deleted;
        CREATE TABLE ops (
            ns BIGINT NOT NULL,
            op_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            PRIMARY KEY (ns, op_id));
        -- Chunk ownership per namespace (D3), with the chunk's size.
        CREATE TABLE chunk_refs (
            ns BIGINT NOT NULL,
            id TEXT NOT NULL,
            size INTEGER NOT NULL,
            PRIMARY KEY (ns, id));
        CREATE INDEX chunk_refs_id ON chunk_refs(id);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE chunk_refs, ops, current, journal, heads")
