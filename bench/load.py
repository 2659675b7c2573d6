"""Load figures for docs/SCALING.md: the API under concurrent load, idle change feeds,
and commits/s on one PostgreSQL shard. Every loop is bounded in count and time and
targets 127.0.0.1 only.

    python -m bench.load [--targets embedded,scaled,stack] [--seconds 4] [--feeds 2000]
    make load LOAD_ARGS="--quick"

For each target (bench.load_targets: one embedded process — the baseline —, one
process on PostgreSQL + S3 + NATS, the stack behind haproxy) it prints requests/s and
p50/p99 latency for has (POST chunks/missing, 64 ids), put 64 KiB, put 4 MiB (streamed
through), commit (one new file) and list (a folder of 50), with `--concurrency`
requests in flight, plus the servers' peak RSS during the 4 MiB puts. On single
processes it then holds `--feeds` idle long-polls and reports RSS and whether a commit
wakes them all; last, commits/s straight into one PostgreSQL shard (bench.load_shard),
against SQLite in the same run. Results go to bench/results/load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import blake3
import httpx

from bench.load_nats import nats_throughput
from bench.load_shard import shard_commits
from bench.load_targets import TARGETS, Target, cpu_count, raise_fd_limit

RESULTS = Path(__file__).resolve().parent / "results" / "load.json"
KiB, MiB = 1 << 10, 1 << 20


def cid(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def summary(times: list[float], wall: float) -> dict:
    qs = statistics.quantiles(times, n=100, method="inclusive") if len(times) > 1 else times * 99
    return {
        "requests": len(times),
        "rps": round(len(times) / wall, 1),
        "p50_ms": round(qs[49] * 1000, 2),
        "p99_ms": round(qs[98] * 1000, 2),
    }


class Client:
    """One logged-in user's view of a target."""

    def __init__(self, http: httpx.AsyncClient, session: dict) -> None:
        self.http = http
        self.ns = session["ns"]
        self.headers = {"Authorization": f"Bearer {session['token']}"}
        self.chunk = os.urandom(64 * KiB)  # a chunk this namespace owns, for commits
        self.counter = 0

    def url(self, tail: str) -> str:
        return f"/v1/ns/{self.ns}/{tail}"

    async def call(self, method: str, tail: str, **kw: object) -> httpx.Response:
        r = await self.http.request(method, self.url(tail), headers=self.headers, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {tail}: {r.status_code} {r.text[:200]}")
        return r

    async def put(self, data: bytes) -> None:
        await self.call("PUT", f"chunks/{cid(data)}", content=data)

    async def commit(self, path: str) -> None:
        blocks = [{"id": cid(self.chunk), "size": len(self.chunk)}]
        op = {"path": path, "action": "file", "size": len(self.chunk), "blocks": blocks}
        await self.call("POST", "commit", json=op)

    async def prepare(self) -> None:
        await self.put(self.chunk)
        ops = [
            {"path": f"listed/f{i:03}", "action": "file", "size": len(self.chunk),
             "blocks": [{"id": cid(self.chunk), "size": len(self.chunk)}]}
            for i in range(50)
        ]  # fmt: skip
        await self.call("POST", "commit_batch", json={"ops": ops})


def ops(known: list[str]) -> dict[str, Callable[[Client], Awaitable[None]]]:
    async def has(c: Client) -> None:
        ids = known[:32] + [cid(os.urandom(16)) for _ in range(32)]
        await c.call("POST", "chunks/missing", json={"ids": ids})

    async def put_64k(c: Client) -> None:
        await c.put(os.urandom(64 * KiB))

    async def put_4m(c: Client) -> None:
        await c.put(os.urandom(4 * MiB))

    async def commit(c: Client) -> None:
        c.counter += 1
        await c.commit(f"bench/{os.getpid()}-{c.counter}-{os.urandom(4).hex()}")

    async def list_(c: Client) -> None:
        await c.call("GET", "list", params={"path": "listed"})

    return {"has": has, "put_64k": put_64k, "put_4m": put_4m, "commit": commit, "list": list_}


async def phase(
    clients: list[Client], op: Callable[[Client], Awaitable[None]], seconds: float, cap: int
) -> tuple[list[float], float]:
    """Each client runs `op` back to back until `seconds` pass or `cap` requests are done."""
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()

    async def worker(c: Client) -> None:
        while time.perf_counter() < deadline and len(times) < cap:
            t0 = time.perf_counter()
            await op(c)
            times.append(time.perf_counter() - t0)

    await asyncio.gather(*(worker(c) for c in clients))
    return times, time.perf_counter() - started


class RssSampler:
    """Peak RSS of the target's server processes, sampled every 20 ms in a thread."""

    def __init__(self, target: Target) -> None:
        self.target, self.peak, self._stop = target, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.target.rss_mib())
            self._stop.wait(0.02)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


async def api_load(target: Target, concurrency: int, seconds: float) -> dict:
    sessions = target.create_users(concurrency, "load")
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=target.url, timeout=120, limits=limits) as http:
        clients = [Client(http, s) for s in sessions]
        await asyncio.gather(*(c.prepare() for c in clients))
        known = [cid(clients[0].chunk)] * 32
        result: dict = {"rss_idle_mib": round(target.rss_mib(), 1)}
        caps = {"put_4m": 400}
        for name, op in ops(known).items():
            cpu0 = target.cpu_seconds()
            with RssSampler(target) as rss:
                times, wall = await phase(clients, op, seconds, caps.get(name, 100_000))
            cpu = target.cpu_seconds() - cpu0
            result[name] = {
                **summary(times, wall),
                "rss_peak_mib": round(rss.peak, 1),
                "server_cpu_s": round(cpu, 2),
                "per_cpu_s": round(len(times) / cpu, 1) if cpu > 0 else None,
            }
            print(f"  {name:8} {result[name]}", flush=True)
        return result


async def idle_feeds(target: Target, feeds: int, users: int = 20) -> dict:
    """Hold `feeds` long-polls on one process, then wake them all with one commit each."""
    sessions = target.create_users(users, "feed")
    before = target.rss_mib()
    limits = httpx.Limits(max_connections=feeds + users + 10, max_keepalive_connections=0)
    timeout = httpx.Timeout(120, pool=120)
    async with httpx.AsyncClient(base_url=target.url, timeout=timeout, limits=limits) as http:
        clients = [Client(http, s) for s in sessions]
        for c in clients:
            await c.put(c.chunk)

        async def hold(c: Client) -> str | None:
            r = await c.call("GET", "changes", params={"cursor": 0, "timeout": 90})
            return r.json()["woke"]

        cpu_open = target.cpu_seconds()
        polls = [asyncio.ensure_future(hold(clients[i % users])) for i in range(feeds)]
        t0 = time.perf_counter()
        while True:
            health = (await http.get("/healthz?optional=notify")).json()
            if health["waiters"] >= feeds or time.perf_counter() - t0 > 120:
                break
            await asyncio.sleep(0.25)
        opened = time.perf_counter() - t0
        held, rss_held = health["waiters"], target.rss_mib()
        open_cpu = target.cpu_seconds() - cpu_open
        cpu0 = target.cpu_seconds()
        await asyncio.sleep(5)  # held and idle: what do they cost?
        idle_cpu = target.cpu_seconds() - cpu0
        cpu1 = target.cpu_seconds()
        t1 = time.perf_counter()
        await asyncio.gather(*(c.commit("wake.txt") for c in clients))
        woke = await asyncio.gather(*polls, return_exceptions=True)
        wake_all = time.perf_counter() - t1
        wake_cpu = target.cpu_seconds() - cpu1
    notified = sum(1 for w in woke if w == "notify")
    result = {
        "feeds": feeds,
        "held": held,
        "open_seconds": round(opened, 2),
        "rss_before_mib": round(before, 1),
        "rss_held_mib": round(rss_held, 1),
        "kib_per_feed": round((rss_held - before) * 1024 / max(held, 1), 1),
        "woken_by_notify": notified,
        "errors": sum(1 for w in woke if isinstance(w, BaseException)),
        "wake_all_seconds": round(wake_all, 3),
        "idle_cpu_s_per_5s": round(idle_cpu, 3),
        "cpu_ms_per_wake": round(wake_cpu * 1000 / max(held, 1), 2),
        "cpu_ms_per_open": round(open_cpu * 1000 / max(held, 1), 2),
    }
    print(f"  feeds    {result}", flush=True)
    return result


def table(results: dict) -> str:
    lines = [
        f"{'target':44} {'op':8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'RSS MiB':>8}"
        f" {'req/CPU-s':>9}"
    ]
    for target, r in results["targets"].items():
        for op in ("has", "put_64k", "put_4m", "commit", "list"):
            if op in r:
                x = r[op]
                lines.append(
                    f"{target:44} {op:8} {x['rps']:8.1f} {x['p50_ms']:8.2f} {x['p99_ms']:8.2f}"
                    f" {x['rss_peak_mib']:8.1f} {x['per_cpu_s'] or 0:9.1f}"
                )
        if "feeds" in r:
            f = r["feeds"]
            lines.append(
                f"{target:44} feeds    {f['held']} held, {f['kib_per_feed']} KiB each, "
                f"{f['woken_by_notify']}/{f['feeds']} woken by notify in {f['wake_all_seconds']} s"
            )
    for kind, s in results.get("shard_commits", {}).items():
        lines.append(f"{'commits straight into ' + kind:44} {s['summary']}")
    if "nats" in results:
        n = results["nats"]
        lines.append(
            f"{'NATS, one publisher -> one wildcard sub':44} {n['publish_per_s']} published/s,"
            f" {n['delivered_per_s']} delivered/s ({n['received']}/{n['messages']})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--targets", default="embedded,scaled,stack")
    parser.add_argument("--seconds", type=float, default=4.0, help="per operation")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--feeds", type=int, default=2000, help="idle long-polls to hold")
    parser.add_argument("--shard-seconds", type=float, default=5.0)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222", help="for the NATS figure")
    parser.add_argument("--quick", action="store_true", help="1 s phases, 200 feeds")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.feeds, args.shard_seconds = 1.0, 200, 1.5
    fds = raise_fd_limit()
    results: dict = {
        "machine": {
            "cpus": cpu_count(),
            "python": platform.python_version(),
            "fd_limit": fds,
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "command": "python -m bench.load " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": vars(args) | {"out": str(args.out)},
        "targets": {},
    }
    work = Path(tempfile.mkdtemp(prefix="syncd-load-"))
    try:
        run_all(args, work, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print("\n" + table(results))
    print(f"\nwritten to {args.out}; load generator and servers share {cpu_count()} cores")
    return 0


def run_all(args: argparse.Namespace, work: Path, results: dict) -> None:
    for key in [t for t in args.targets.split(",") if t]:
        target = TARGETS[key](work)
        print(f"{target.name}: {target.url}", flush=True)
        try:
            r = asyncio.run(api_load(target, args.concurrency, args.seconds))
            if len(target.pids) == 1:
                r["feeds"] = asyncio.run(idle_feeds(target, args.feeds))
            results["targets"][target.name] = r
        finally:
            target.stop()
    results["shard_commits"] = shard_commits(work, args.shard_seconds)
    results["nats"] = nats_throughput(args.nats)
    results["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]


if __name__ == "__main__":
    raise SystemExit(main())
