"""Commits/s straight into one metadata database (bench.pg_commits' writers: one thread
per user, each committing ~100 KB files of two owned chunks), for one PostgreSQL shard
and SQLite in the same run, plus what each committed file costs on the shard's disk."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from bench.pg_commits import run as files_per_second
from deploy.stack import PG_ADMIN, admin_sql

DB = "syncd_bench_shard"


def _pg(sql: str) -> int:
    with psycopg.connect(f"{PG_ADMIN}/{DB}") as conn:
        return conn.execute(sql).fetchone()[0]


def _size() -> int:
    """The shard database's size on disk after a checkpoint (tables, indexes, TOAST)."""
    admin_sql("CHECKPOINT")
    return _pg("SELECT pg_database_size(current_database())")


def shard_commits(work: Path, seconds: float, threads: int = 8) -> dict:
    """{kind: {files_per_s_1, files_per_s_100, summary[, bytes_per_file]}}."""
    from syncd.server.metastore import open_metastore

    out: dict = {}
    admin_sql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    admin_sql(f'CREATE DATABASE "{DB}"')
    kinds = {
        "SQLite (baseline)": f"sqlite:///{(work / 'shard-bench.sqlite3').resolve()}",
        "one PostgreSQL shard": f"{PG_ADMIN}/{DB}?pool_max={threads + 2}",
    }
    try:
        for kind, url in kinds.items():
            meta = open_metastore(url)
            is_pg = url.startswith("postgresql")
            try:
                before = _size() if is_pg else 0
                tag = f"load-{int(time.time())}"
                single = files_per_second(meta, threads, 1, seconds, f"{tag}-1")
                batch = files_per_second(meta, threads, 100, seconds, f"{tag}-100")
            finally:
                meta.close()
            out[kind] = {
                "threads": threads,
                "commits_per_s": round(single, 1),  # one file per commit
                "files_per_s_in_commits_of_100": round(batch, 1),
                "summary": f"{single:.0f} commits/s of 1 file ({threads} writers),"
                f" {batch:.0f} files/s in commits of 100",
            }
            if is_pg:
                per_file = (_size() - before) / _pg("SELECT count(*) FROM journal")
                out[kind]["bytes_per_file"] = round(per_file)
                out[kind]["summary"] += f"; {per_file:.0f} B on disk per file committed"
            print(f"  {kind}: {out[kind]['summary']}", flush=True)
    finally:
        admin_sql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    return out
