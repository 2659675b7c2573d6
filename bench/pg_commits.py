"""Commits per second on one PostgreSQL shard, with SQLite measured in the same run.

    python -m bench.pg_commits [--seconds 3] [--rounds 3] [--threads 1,8] [--batch 1,50]

Each writer thread is one device of its own user (its own namespace) committing new
~100 KB files (two chunks each, already uploaded) through the metastore, as the API
does: the parent_rev check, the owned-chunk check, the journal insert and the head's
new sequence number in one transaction. `--batch N` sends N files per commit (a
`commit_batch`). PostgreSQL is the local server (`$SYNCD_BENCH_PG`, default
postgresql://postgres@127.0.0.1:5432) in scratch databases `bench_commits*` that are
dropped afterwards; SQLite is the embedded default (WAL) in a temp dir. Both run the
same code path, so the ratio is the figure; the absolute numbers are this machine's.
Each figure is the best of `--rounds` runs (other load on the machine only slows a run
down); the load average is printed with them.

SQLite runs with synchronous=NORMAL (a commit is not fsynced; WAL checkpoints are),
PostgreSQL with its default synchronous_commit=on (each commit waits for its WAL fsync):
PostgreSQL's figure is the durable one. The `pg-nosync` column is the same database
with synchronous_commit=off (a crash may lose the last few commits, never corrupt),
which is what SQLite's setting compares with.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import blake3
import psycopg

from syncd.server.metastore import CommitOp, MetaStore, open_metastore

ADMIN = os.environ.get("SYNCD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DB = "bench_commits"  # and DB + "_nosync"
CHUNKING = (16384, 65536, 262144)


def admin(sql: str) -> None:
    with psycopg.connect(f"{ADMIN}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def prepare(meta: MetaStore, threads: int, tag: str) -> list[tuple[int, tuple]]:
    """One user per thread, each owning two chunks (~100 KB together)."""
    out = []
    for t in range(threads):
        ns = meta.create_user(f"{tag}-{t}", None, "h", CHUNKING).namespace
        blocks = []
        for part in range(2):
            data = b"%s %d %d " % (tag.encode(), t, part) * 3000
            blocks.append((blake3.blake3(data).hexdigest(), len(data)))
        meta.add_chunks(ns, blocks)
        out.append((ns, tuple(blocks)))
    return out


def run(meta: MetaStore, threads: int, batch: int, seconds: float, tag: str) -> float:
    """Files committed per second by `threads` writers, `batch` files per commit."""
    users = prepare(meta, threads, tag)
    counts = [0] * threads
    stop = threading.Event()

    def writer(i: int) -> None:
        ns, blocks = users[i]
        size = sum(s for _, s in blocks)
        n = 0
        while not stop.is_set():
            ops = [
                CommitOp(f"dir/f{n + k}.bin", "file", None, size=size, blocks=blocks)
                for k in range(batch)
            ]
            results = meta.commit(ns, ops, "bench", "dev", time.time())
            assert all(r.status == "ok" for r in results), results[0]
            n += batch
        counts[i] = n

    pool = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in pool:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="length of one run")
    ap.add_argument("--rounds", type=int, default=3, help="runs per figure (the best counts)")
    ap.add_argument("--threads", default="1,8", help="writer threads to try, comma-separated")
    ap.add_argument("--batch", default="1,50", help="files per commit to try, comma-separated")
    ap.add_argument("--quick", action="store_true", help="1 s, 1 round per figure")
    args = ap.parse_args()
    seconds = 1.0 if args.quick else args.seconds
    rounds = 1 if args.quick else args.rounds
    threads = [int(x) for x in args.threads.split(",")]
    batches = [int(x) for x in args.batch.split(",")]

    for db in (DB, DB + "_nosync"):
        admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin(f'CREATE DATABASE "{db}"')
    tmp = tempfile.TemporaryDirectory()
    stores = {
        "sqlite": open_metastore(f"sqlite:///{Path(tmp.name) / 'meta.sqlite3'}"),
        "postgresql": open_metastore(f"{ADMIN}/{DB}?pool_max=16"),
        # commits not waiting for their fsync (as SQLite's NORMAL)
        "pg-nosync": open_metastore(
            f"{ADMIN}/{DB}_nosync?pool_max=16&options=-c%20synchronous_commit%3Doff"
        ),
    }
    print(
        f"files committed per second (best of {rounds} x {seconds:.0f} s; ~100 KB files,"
        f" 2 chunks; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    print(
        f"{'threads':>7} {'batch':>5} {'sqlite':>8} {'postgresql':>10} {'pg/sqlite':>9}"
        f" {'pg-nosync':>9} {'ratio':>6}"
    )
    try:
        for n in threads:
            for b in batches:
                rate = {
                    kind: max(
                        run(meta, n, b, seconds, f"{kind}-{n}-{b}-{r}") for r in range(rounds)
                    )
                    for kind, meta in stores.items()
                }
                base = rate["sqlite"]
                print(
                    f"{n:>7} {b:>5} {base:>8.0f} {rate['postgresql']:>10.0f}"
                    f" {rate['postgresql'] / base:>9.2f}"
                    f" {rate['pg-nosync']:>9.0f} {rate['pg-nosync'] / base:>6.2f}"
                )
    finally:
        for meta in stores.values():
            meta.close()
        tmp.cleanup()
        for db in (DB, DB + "_nosync"):
            admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
