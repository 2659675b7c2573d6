"""What bench.load measures against: one embedded server process, one server process on
PostgreSQL + S3 (moto) + NATS, and the scaled stack (deploy.stack) behind haproxy."""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.peers.procs import cpu_seconds as proc_cpu_seconds
from bench.peers.procs import status_kib
from deploy.services import Moto, Proc, answers, free_port, wait_until
from deploy.stack import PG_ADMIN, Stack, admin_sql

# Chunk parameters of the bench's namespaces: max 4 MiB so a 4 MiB chunk is one PUT.
BENCH_CHUNKING = "16384,65536,4194304"
PASSWORD = "bench-password"


def rss_mib(pid: int) -> float:
    return status_kib(pid, "VmRSS") / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    return proc_cpu_seconds(pid, children=False)


@dataclass
class Target:
    """A running deployment: its URL, metastore URL, and the server pids behind it."""

    name: str
    url: str
    meta_url: str
    pids: list[int]
    stop_all: list = field(default_factory=list)  # callables, run in order by stop()

    def rss_mib(self) -> float:
        return sum(rss_mib(p) for p in self.pids)

    def cpu_seconds(self) -> float:
        """CPU the server processes have used (not haproxy, the databases or moto)."""
        return sum(cpu_seconds(p) for p in self.pids)

    def create_users(self, n: int, tag: str) -> list[dict]:
        """n users made directly in the metastore, each logged in: {token, ns}."""
        from syncd.server.auth import hash_password
        from syncd.server.metastore import open_metastore

        meta = open_metastore(self.meta_url)
        lo, avg, hi = (int(x) for x in BENCH_CHUNKING.split(","))
        pw = hash_password(PASSWORD)
        names = [f"{tag}{i}-{secrets.token_hex(3)}" for i in range(n)]
        try:
            for name in names:
                meta.create_user(name, None, pw, (lo, avg, hi))
        finally:
            meta.close()
        sessions = []
        with httpx.Client(base_url=self.url, timeout=60) as c:
            for name in names:
                body = {"user": name, "password": PASSWORD, "device": "bench"}
                r = c.post("/v1/login", json=body)
                r.raise_for_status()
                sessions.append({"token": r.json()["token"], "ns": r.json()["namespace"]})
        return sessions

    def stop(self) -> None:
        for stop in self.stop_all:
            stop()


def _server(workdir: Path, name: str, extra: list[str]) -> tuple[Proc, str]:
    port = free_port()
    argv = [sys.executable, "-m", "syncd", "server", "--data", str(workdir / name)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *extra]
    env = {"SYNCD_CHUNKING": BENCH_CHUNKING}
    proc = Proc(name, argv, workdir / f"{name}.log", env=env).start()
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        proc.check_alive()
        return answers(url + "/healthz")

    wait_until(ready, f"{name} to pass /healthz", 60)
    return proc, url


def embedded(workdir: Path) -> Target:
    """`syncd server` with no backend options: SQLite, local disk, in-process notifier."""
    proc, url = _server(workdir, "embedded", [])
    meta = f"sqlite:///{(workdir / 'embedded' / 'meta.sqlite3').resolve()}"
    return Target("embedded (SQLite+disk)", url, meta, [proc.pid or 0], [proc.stop])


def scaled(workdir: Path, nats: str = "nats://127.0.0.1:4222") -> Target:
    """One server process on one PostgreSQL database, S3 (moto) and NATS."""
    db = "syncd_bench_single"
    admin_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    admin_sql(f'CREATE DATABASE "{db}"')
    moto = Moto(workdir).start()
    moto.create_bucket("bench")
    meta = f"{PG_ADMIN}/{db}"
    notify = f"{nats}?subject=bench{secrets.token_hex(4)}"
    extra = ["--meta", meta, "--blocks", moto.url("bench"), "--notify", notify]
    proc, url = _server(workdir, "scaled", extra)

    def drop() -> None:
        admin_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')

    return Target(
        "1 process (PostgreSQL+S3+NATS)", url, meta, [proc.pid or 0], [proc.stop, moto.stop, drop]
    )


def stack(workdir: Path, servers: int = 2, shards: int = 2) -> Target:
    s = Stack(workdir / "stack", servers=servers, shards=shards, db_prefix="syncd_bench_stack_")
    s.server_env = {"SYNCD_CHUNKING": BENCH_CHUNKING}
    s.start()
    pids = [p.pid or 0 for p in s.procs]
    return Target(
        f"stack ({servers} processes, {shards} shards, haproxy)", s.url, s.meta_url, pids, [s.stop]
    )


TARGETS = {"embedded": embedded, "scaled": scaled, "stack": stack}


def raise_fd_limit() -> int:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_count() -> int:
    return os.cpu_count() or 1
