"""The scaled stack on this machine: haproxy → N `syncd server` processes → PostgreSQL
shards (a directory database + N shard databases), S3 (moto) and NATS.

    python -m deploy.stack [--servers 2] [--shards 2] [--port 8480]     # or: make stack

starts everything, prints where it is and how to add a user, and stops it all cleanly
on Ctrl-C (or SIGTERM). It is a throwaway: moto keeps chunks in memory, so the stack's
databases (`syncd_stack_*` by default) are dropped on exit as well, unless --keep.
PostgreSQL and NATS are the machine's own services ($SYNCD_STACK_PG, default
postgresql://postgres@127.0.0.1:5432; --nats, default nats://127.0.0.1:4222); every
run publishes on its own random NATS subject prefix. The e2e test drives this module.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from urllib.parse import urlencode

from deploy.services import DEPLOY, Moto, Proc, answers, free_port, wait_until

PG_ADMIN = os.environ.get("SYNCD_STACK_PG", "postgresql://postgres@127.0.0.1:5432")
NATS = "nats://127.0.0.1:4222"


def admin_sql(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_ADMIN}/postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def haproxy_maxconn() -> int:
    """As many connections as the file limit allows (two descriptors each), up to 20,000."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    room = 40_000 if hard == resource.RLIM_INFINITY else hard
    return max(256, min(20_000, room // 2 - 100))


@dataclass
class Stack:
    workdir: Path
    servers: int = 2
    shards: int = 2
    port: int = 0  # haproxy's frontend; 0: any free port
    nats: str = NATS
    db_prefix: str = "syncd_stack_"
    server_env: dict[str, str] = field(default_factory=dict)  # e.g. SYNCD_CHUNKING
    moto: Moto | None = None
    procs: list[Proc] = field(default_factory=list)  # the server processes, in order
    ports: list[int] = field(default_factory=list)
    haproxy: Proc | None = None
    stats_port: int = 0
    subject: str = field(default_factory=lambda: f"stack{secrets.token_hex(4)}")
    databases: list[str] = field(default_factory=list)

    # -- where things are ---------------------------------------------------------------
    @property
    def url(self) -> str:
        """The load balancer: what clients are given."""
        return f"http://127.0.0.1:{self.port}"

    def server_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    def db_url(self, name: str) -> str:
        return f"{PG_ADMIN}/{self.db_prefix}{name}"

    @property
    def meta_url(self) -> str:
        shards = [("shard", self.db_url(f"shard{i}")) for i in range(self.shards)]
        return "pgshards://?" + urlencode([("directory", self.db_url("directory")), *shards])

    @property
    def blocks_url(self) -> str:
        assert self.moto is not None
        return self.moto.url("syncd-stack")

    @property
    def notify_url(self) -> str:
        return f"{self.nats}?subject={self.subject}&reconnect_wait=0.5"

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> Stack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_moto()
            self._create_databases()
            for i in range(self.servers):
                self._start_server(i)
            self._start_haproxy()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_moto(self) -> None:
        self.moto = Moto(self.workdir).start()
        self.moto.create_bucket("syncd-stack")

    def _create_databases(self) -> None:
        names = ["directory", *(f"shard{i}" for i in range(self.shards))]
        for name in names:
            full = f"{self.db_prefix}{name}"
            admin_sql(f'DROP DATABASE IF EXISTS "{full}" WITH (FORCE)')
            admin_sql(f'CREATE DATABASE "{full}"')
            self.databases.append(full)
        from syncd.server.metastore import open_metastore

        open_metastore(self.meta_url).close()  # migrates every database once, up front

    def server_argv(self, i: int) -> list[str]:
        return [
            sys.executable, "-m", "syncd", "server",
            "--data", str(self.workdir / f"server{i}"),
            "--host", "127.0.0.1", "--port", str(self.ports[i]),
            "--meta", self.meta_url,
            "--blocks", self.blocks_url,
            "--notify", self.notify_url,
        ]  # fmt: skip

    def _start_server(self, i: int) -> None:
        if i >= len(self.ports):
            self.ports.append(free_port())
        proc = Proc(
            f"server{i}",
            self.server_argv(i),
            self.workdir / f"server{i}.log",
            env=self.server_env,
        ).start()
        if i < len(self.procs):
            self.procs[i] = proc
        else:
            self.procs.append(proc)

        def ready() -> bool:
            proc.check_alive()
            return answers(self.server_url(i) + "/healthz")

        wait_until(ready, f"server{i} to pass /healthz", 60)

    def haproxy_config(self) -> str:
        lines = [f"    server s{i} 127.0.0.1:{port} check" for i, port in enumerate(self.ports)]
        template = Template((DEPLOY / "haproxy.cfg").read_text())
        return template.substitute(
            maxconn=haproxy_maxconn(),
            pidfile=self.workdir / "haproxy.pid",
            bind=f"127.0.0.1:{self.port}",
            stats_bind=f"127.0.0.1:{self.stats_port}",
            servers="\n".join(lines),
        )

    def _start_haproxy(self) -> None:
        tool = shutil.which("haproxy")
        if tool is None:
            raise RuntimeError("haproxy is not installed (Debian package haproxy)")
        self.port = self.port or free_port()
        self.stats_port = self.stats_port or free_port()
        cfg = self.workdir / "haproxy.cfg"
        cfg.write_text(self.haproxy_config())
        check = subprocess.run([tool, "-c", "-f", str(cfg)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy rejects {cfg}:\n{check.stdout}{check.stderr}")
        self.haproxy = Proc("haproxy", [tool, "-db", "-f", str(cfg)], self.workdir / "haproxy.log")
        self.haproxy.start()

        def ready() -> bool:
            assert self.haproxy is not None
            self.haproxy.check_alive()
            return answers(self.url + "/healthz")

        wait_until(ready, "haproxy to pass requests to a healthy server", 30)

    def sessions(self) -> list[int]:
        """Connections haproxy has open to each server now (from its CSV stats)."""
        import csv

        import httpx

        text = httpx.get(f"http://127.0.0.1:{self.stats_port}/;csv", timeout=5).text
        rows = csv.DictReader(text.lstrip("# ").splitlines())
        current = {r["svname"]: int(r["scur"] or 0) for r in rows if r["pxname"] == "servers"}
        return [current.get(f"s{i}", 0) for i in range(len(self.ports))]

    def kill_server(self, i: int) -> None:
        """kill -9 one server process (the crash the stack must ride out)."""
        self.procs[i].kill()

    def restart_server(self, i: int) -> None:
        self.procs[i].stop()
        self._start_server(i)

    def adduser(self, name: str, password: str) -> None:
        cmd = [sys.executable, "-m", "syncd", "server", "adduser", name, "--meta"]
        cmd += [self.meta_url, "--password-stdin"]
        out = subprocess.run(
            cmd,
            input=password + "\n",
            capture_output=True,
            text=True,
            env={**os.environ, **self.server_env},
        )
        if out.returncode != 0:
            raise RuntimeError(f"adduser {name}: {out.stderr}")

    def stop(self, keep: bool = False) -> None:
        """Stop everything this stack started (haproxy first, moto last)."""
        if self.haproxy is not None:
            self.haproxy.stop()
        for proc in self.procs:
            proc.stop()
        if self.moto is not None:
            self.moto.stop()
        if not keep:
            for name in self.databases:
                try:
                    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                except Exception as exc:  # report, and go on stopping the rest
                    print(f"stack: could not drop {name}: {exc}", file=sys.stderr)
            self.databases.clear()

    def describe(self) -> str:
        servers = "\n".join(
            f"  server{i}: {self.server_url(i)} (pid {p.pid}, log {p.log_path})"
            for i, p in enumerate(self.procs)
        )
        return (
            f"syncd stack up: {self.url} (haproxy; stats at http://127.0.0.1:{self.stats_port}/)\n"
            f"{servers}\n"
            f"  metadata: {self.shards} PostgreSQL shard(s) + directory: {self.meta_url}\n"
            f"  chunks:   {self.blocks_url.split('&access_key_id')[0]} (moto)\n"
            f"  notify:   {self.notify_url}\n"
            f"  logs:     {self.workdir}\n"
            f"add a user:  syncd server adduser NAME --meta '{self.meta_url}'\n"
            f"link a device:  syncd link {self.url} --user NAME --folder DIR\n"
            "Ctrl-C stops everything."
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.stack", description=__doc__)
    parser.add_argument("--servers", type=int, default=2, help="server processes (default 2)")
    parser.add_argument("--shards", type=int, default=2, help="PostgreSQL shards (default 2)")
    parser.add_argument("--port", type=int, default=8480, help="haproxy's port (default 8480)")
    parser.add_argument("--nats", default=NATS, help=f"NATS server (default {NATS})")
    parser.add_argument("--workdir", type=Path, default=None, help="logs and data (a temp dir)")
    parser.add_argument("--db-prefix", default="syncd_stack_", help="database name prefix")
    parser.add_argument("--keep", action="store_true", help="keep the databases on exit")
    parser.add_argument("--user", default=None, help="create this user (password: --password)")
    parser.add_argument("--password", default="syncd-stack", help="for --user")
    parser.add_argument("--print-haproxy", action="store_true", help="print the config, exit")
    args = parser.parse_args(argv)
    if args.servers < 1 or args.shards < 1:
        parser.error("--servers and --shards must be at least 1")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="syncd-stack-"))
    stack = Stack(workdir, args.servers, args.shards, args.port, args.nats, args.db_prefix)
    if args.print_haproxy:
        stack.ports = [8500 + i for i in range(args.servers)]
        stack.stats_port = args.port + 1
        print(stack.haproxy_config())
        return 0

    def stop_on(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on)
    try:
        stack.start()
        if args.user:
            stack.adduser(args.user, args.password)
            print(f"user {args.user!r} created (password {args.password!r})")
        print(stack.describe(), flush=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        print("\nstopping the stack…", file=sys.stderr)
    except RuntimeError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop(keep=args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
