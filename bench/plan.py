"""The capacity plan's arithmetic, from bench/results/load.json: every derived figure in
docs/SCALING.md is printed here with its formula, so a new measurement re-derives it.

    python -m bench.plan [--measured] [bench/results/load.json]

Seed figures (1 B accounts, 100 M active, 2 devices each, 100 files of 100 KB) and the
assumptions marked A1… are constants below; everything else comes from the JSON.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from bench.load import RESULTS

# -- the seed ------------------------------------------------------------------------------
ACTIVE_USERS = 100e6
DEVICES_PER_USER = 2
FILES = 10e9  # 100 M active x 100 files
FILE_BYTES = 100e3
# -- assumptions (not measured; change them here) -------------------------------------------
CHANGES_PER_USER_DAY = 10  # A1: files created or edited per active user per day
PEAK_FACTOR = 3  # A2: peak hour rate / daily average rate
ONLINE_SHARE = 1.0  # A3: share of devices online at peak (1.0 = every device, the bound)
POLL_TIMEOUT_S = 60  # A4: the client's long-poll timeout today (syncd/transport/feed.py)
HEADROOM = 0.5  # A5: run every resource at half its measured capacity
CHUNKS_PER_FILE = 2  # A6: a 100 KB file is 1-2 chunks at avg 64 KiB / min 16 KiB
PROCESS_RAM_GIB = 8  # A7: memory one server process may use
SHARD_BYTES = 2e12  # A8: metadata one PostgreSQL shard should hold (2 TB)
NATS_PARTITIONS = 64  # A9: notification subject partitions (see docs/SCALING.md)
GBIT = 1e9 / 8


def ceil(x: float) -> int:
    return math.ceil(x - 1e-9)


def plan(r: dict) -> list[tuple[str, str, str]]:
    """(figure, value, formula) rows."""
    one = r["targets"]["1 process (PostgreSQL+S3+NATS)"]
    feeds = one["feeds"]
    pg = r["shard_commits"]["one PostgreSQL shard"]
    rows: list[tuple[str, str, str]] = []

    def row(name: str, value: float, formula: str, unit: str = "") -> float:
        text = f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"
        rows.append((name, f"{text}{unit}", formula))
        return value

    devices = row(
        "devices online at peak",
        ACTIVE_USERS * DEVICES_PER_USER * ONLINE_SHARE,
        "100 M active x 2 devices x A3",
    )
    changes = row(
        "changes/s, daily average",
        ACTIVE_USERS * CHANGES_PER_USER_DAY / 86400,
        "100 M x A1 / 86,400 s",
    )
    peak = row("commits/s at peak", changes * PEAK_FACTOR, "average x A2")
    # change-feed connections
    kib = feeds["kib_per_feed"]
    per_proc_feeds = row(
        "held feeds per process (memory bound)",
        PROCESS_RAM_GIB * 2**20 / kib,
        f"A7 / {kib} KiB per held feed (measured)",
    )
    feed_procs = row(
        "server processes to hold every feed",
        devices / per_proc_feeds,
        "devices online / feeds per process",
    )
    repolls = row("idle re-polls/s", devices / POLL_TIMEOUT_S, "devices online / A4")
    # API requests: per change, the uploader sends has + puts + commit, the other device
    # is woken and reads changes, then fetches the chunks.
    cpu = {op: one[op]["per_cpu_s"] for op in ("has", "put_64k", "commit", "list")}
    wake_ms = feeds["cpu_ms_per_wake"]
    cpu_per_change = (
        1 / cpu["has"]
        + CHUNKS_PER_FILE / cpu["put_64k"]
        + 1 / cpu["commit"]
        + wake_ms / 1000
        + 1 / cpu["list"]
        + CHUNKS_PER_FILE / cpu["put_64k"]
    )
    row(
        "server CPU-ms per change",
        cpu_per_change * 1000,
        "1/has + A6/put + 1/commit + wake + 1/read + A6/get, each measured per CPU-s "
        "(a get is costed as a put)",
    )
    cores_changes = row(
        "server cores for changes at peak",
        peak * cpu_per_change / HEADROOM,
        "peak x CPU per change / A5",
    )
    if "cpu_ms_per_open" in feeds:
        open_ms, how = feeds["cpu_ms_per_open"], "open (measured)"
    else:
        open_ms, how = 1000 / cpu["list"], "a read request (list, measured)"
    repoll_ms = row("server CPU-ms per idle re-poll", open_ms + wake_ms, f"{how} + end (measured)")
    cores_repolls = row(
        "server cores for idle re-polls",
        repolls * repoll_ms / 1000 / HEADROOM,
        "re-polls/s x CPU per re-poll / A5",
    )
    row(
        "  … with the client's poll timeout at the server's 300 s maximum",
        repolls * POLL_TIMEOUT_S / 300 * repoll_ms / 1000 / HEADROOM,
        "the same x A4 / 300 s",
    )
    row("server cores in all", cores_changes + cores_repolls, "sum of the two")
    processes = row(
        "server processes (1 core each)",
        max(feed_procs, cores_changes + cores_repolls),
        "max(feed-memory bound, CPU bound)",
    )
    # metadata
    shard_cps = pg["commits_per_s"]
    by_rate = row(
        "PostgreSQL shards for the commit rate",
        peak / (shard_cps * HEADROOM),
        f"peak / ({shard_cps} commits/s per shard, measured x A5)",
    )
    per_file = pg["bytes_per_file"]
    meta_bytes = row(
        "metadata for 10 B files",
        FILES * per_file / 1e12,
        f"10 B x {per_file} B per file (measured)",
        " TB",
    )
    growth = row(
        "metadata growth per day",
        changes * 86400 * per_file / 1e12,
        "changes/day x bytes per file (each change is a journal row)",
        " TB",
    )
    by_size = row(
        "PostgreSQL shards for the data (year 1)",
        (meta_bytes + 365 * growth) * 1e12 / SHARD_BYTES,
        "(10 B files + 365 days of changes) / A8",
    )
    shards = max(by_rate, by_size)
    row("PostgreSQL shards (primaries)", ceil(shards), "max(rate bound, size bound)")
    row("PostgreSQL servers with 2 streaming replicas each", ceil(shards) * 3, "shards x 3")
    # notifications
    nats = r["nats"]
    row("notifications/s published at peak", peak, "one per commit")
    row(
        "NATS deliveries/s, one wildcard per process",
        peak * processes,
        "peak x processes (every process hears every commit)",
    )
    row(
        "NATS deliveries/s with A9 partitions",
        peak * processes / NATS_PARTITIONS,
        "peak x processes / A9 (a process subscribes to its partitions only)",
    )
    row(
        "one connection's delivery capacity used per process, partitioned",
        100 * peak / NATS_PARTITIONS / nats["delivered_per_s"],
        f"(peak / A9) / {nats['delivered_per_s']} delivered/s (measured)",
        " %",
    )
    # storage and bandwidth
    row("chunk storage, logical", FILES * FILE_BYTES / 1e15, "10 B x 100 KB", " PB")
    new_per_day = row(
        "new chunk bytes per day (versions kept)",
        changes * 86400 * FILE_BYTES / 1e12,
        "changes/day x 100 KB",
        " TB",
    )
    row("S3 objects (chunks)", FILES * CHUNKS_PER_FILE / 1e9, "10 B files x A6", " B")
    row("chunk PUTs/s at peak", peak * CHUNKS_PER_FILE, "peak x A6")
    row(
        "raw disk at 3 replicas (self-hosted), year 1",
        3 * (FILES * FILE_BYTES + 365 * new_per_day * 1e12) / 1e15,
        "3 x (1 PB + 365 x new per day)",
        " PB",
    )
    up = row("upload at peak", peak * FILE_BYTES / GBIT, "peak x 100 KB", " Gbit/s")
    row(
        "download at peak (the other device)",
        up * (DEVICES_PER_USER - 1),
        "upload x (devices - 1)",
        " Gbit/s",
    )
    return rows


def measured(r: dict) -> str:
    """The measured figures as docs/SCALING.md shows them."""
    out = [
        "| target | op | req/s (wall) | p50 ms | p99 ms | peak RSS MiB | req per server CPU-s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for target, t in r["targets"].items():
        for op in ("has", "put_64k", "put_4m", "commit", "list"):
            x = t[op]
            out.append(
                f"| {target} | {op} | {x['rps']:,.0f} | {x['p50_ms']:.0f} | {x['p99_ms']:.0f}"
                f" | {x['rss_peak_mib']:.0f} | {x['per_cpu_s']:,.0f} |"
            )
    for target, t in r["targets"].items():
        if "feeds" in t:
            f = t["feeds"]
            out.append(
                f"\n{target}: {f['held']:,} feeds held, {f['kib_per_feed']} KiB each "
                f"(RSS {f['rss_before_mib']:.0f} → {f['rss_held_mib']:.0f} MiB), "
                f"{f['cpu_ms_per_open']} CPU-ms to open one, {f['cpu_ms_per_wake']} to wake one,"
                f" {f['idle_cpu_s_per_5s']} CPU-s per 5 s idle; "
                f"{f['woken_by_notify']:,}/{f['feeds']:,} woken by notify."
            )
    for kind, x in r["shard_commits"].items():
        out.append(f"\n{kind}: {x['summary']}.")
    n = r["nats"]
    out.append(
        f"\nNATS: {n['publish_per_s']:,} published/s, {n['delivered_per_s']:,} delivered/s"
        f" ({n['received']:,}/{n['messages']:,})."
    )
    return "\n".join(out)


def markdown(rows: list[tuple[str, str, str]]) -> str:
    out = ["| figure | value | derived as |", "|---|---:|---|"]
    out += [f"| {name} | {value} | {formula} |" for name, value, formula in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    paths = [a for a in args if not a.startswith("--")]
    results = json.loads((Path(paths[0]) if paths else RESULTS).read_text())
    if "--measured" in args:
        print(measured(results) + "\n")
    print(markdown(plan(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
