"""Commits/s straight into one metadata database, no HTTP: one PostgreSQL shard, and
SQLite as the same-run baseline. Threads commit single-file ops (each its own
transaction), each thread in its own namespace, as many users' devices would."""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path

import blake3

from deploy.stack import PG_ADMIN, admin_sql

DB = "syncd_bench_shard"


def _run(url: str, seconds: float, threads: int, batch: int) -> dict:
    from syncd.server.metastore import CommitOp, open_metastore

    meta = open_metastore(url)
    try:
        chunk = os.urandom(1024)
        cid = blake3.blake3(chunk).hexdigest()
        users = [
            meta.create_user(f"c{i}-{os.urandom(3).hex()}", None, "x", (1024, 4096, 16384))
            for i in range(threads)
        ]
        for u in users:
            meta.add_chunks(u.namespace, [(cid, len(chunk))])
        times: list[float] = []
        lock = threading.Lock()
        deadline = time.perf_counter() + seconds

        def worker(ns: int) -> None:
            n = 0
            while time.perf_counter() < deadline:
                ops = [
                    CommitOp(f"d/{n}-{k}", "file", None, len(chunk), blocks=((cid, len(chunk)),))
                    for k in range(batch)
                ]
                n += 1
                t0 = time.perf_counter()
                results = meta.commit(ns, ops, "bench", "dev", time.time())
                elapsed = time.perf_counter() - t0
                assert all(r.status == "ok" for r in results)
                with lock:
                    times.append(elapsed)

        started = time.perf_counter()
        pool = [threading.Thread(target=worker, args=(u.namespace,)) for u in users]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        wall = time.perf_counter() - started
    finally:
        meta.close()
    qs = statistics.quantiles(times, n=100, method="inclusive")
    return {
        "threads": threads,
        "ops_per_commit": batch,
        "commits": len(times),
        "files": len(times) * batch,
        "commits_per_s": round(len(times) / wall, 1),
        "ops_per_s": round(len(times) * batch / wall, 1),
        "p50_ms": round(qs[49] * 1000, 2),
        "p99_ms": round(qs[98] * 1000, 2),
    }


def _pg_size() -> int:
    """The shard database's size on disk, after a checkpoint (tables, indexes, TOAST)."""
    import psycopg

    admin_sql("CHECKPOINT")
    with psycopg.connect(f"{PG_ADMIN}/{DB}") as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def shard_commits(work: Path, seconds: float, threads: int = 8) -> dict:
    """{kind: {single: …, batch100: …, summary: str}} for SQLite and one PostgreSQL shard."""
    out: dict = {}
    admin_sql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    admin_sql(f'CREATE DATABASE "{DB}"')
    kinds = {
        "SQLite (baseline)": f"sqlite:///{(work / 'shard-bench.sqlite3').resolve()}",
        "one PostgreSQL shard": f"{PG_ADMIN}/{DB}?pool_max={threads + 2}",
    }
    try:
        for kind, url in kinds.items():
            size_before = _pg_size() if url.startswith("postgresql") else None
            single = _run(url, seconds, threads, 1)
            batch = _run(url, seconds, threads, 100)
            out[kind] = {
                "single": single,
                "batch100": batch,
                "summary": f"{single['commits_per_s']} commits/s (1 op, p99 {single['p99_ms']} ms)"
                f", {batch['ops_per_s']} ops/s in commits of 100",
            }
            if size_before is not None:
                files = single["files"] + batch["files"]
                per_file = (_pg_size() - size_before) / files
                out[kind]["bytes_per_file"] = round(per_file)
                out[kind]["summary"] += f"; {per_file:.0f} B on disk per file committed"
            print(f"  {kind}: {out[kind]['summary']}", flush=True)
    finally:
        admin_sql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    return out
