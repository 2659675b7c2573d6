"""rsync: an rsync daemon holds B; after each change on A the harness runs one push
(`rsync -a --delete --modify-window=-1 A/ rsync://…/bench/`, rsync's delta algorithm at its
defaults) through a counting proxy. `--modify-window=-1` makes rsync's quick check compare
nanoseconds: by default it compares whole seconds, and a same-size edit made in the same
second as the last push (scenario 3's one-byte overwrite, in quick mode) was skipped.
It has no watcher, so its times are a lower bound for a tool that must first notice the
change."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from bench.peers.contenders.base import Contender, Wire, free_port, wait_port
from tests.support.server import stop_process


class Rsync(Contender):
    name = "rsync"
    label = "rsync (push)"
    has_daemon = False
    watch_children = True

    def __init__(self) -> None:
        super().__init__()
        self.proc: subprocess.Popen | None = None

    def missing(self) -> str | None:
        return None if shutil.which("rsync") else "no `rsync` (apt-get install rsync)"

    def version(self) -> str:
        out = subprocess.run(["rsync", "--version"], capture_output=True, text=True)
        return out.stdout.splitlines()[0].replace("  ", " ")

    def _start(self) -> None:
        assert self.base is not None
        port = free_port()
        conf = self.base / "rsyncd.conf"
        conf.write_text(
            f"port = {port}\naddress = 127.0.0.1\nuse chroot = no\n"
            f"pid file = {self.base / 'rsyncd.pid'}\nlog file = {self.base / 'rsyncd.log'}\n"
            f"[bench]\npath = {self.b}\nread only = no\n"
            f"uid = {os.getuid()}\ngid = {os.getgid()}\n"
        )
        self.proc = subprocess.Popen(
            ["rsync", "--daemon", "--no-detach", f"--config={conf}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(port)
        self.pr = self.proxy(port, "A->rsyncd")

    def after_change(self) -> None:
        self.push()

    def push(self) -> None:
        assert self.base is not None
        url = f"rsync://127.0.0.1:{self.pr.port}/bench/"
        err = self.base / "push.err"
        proc = subprocess.Popen(
            ["rsync", "-a", "--delete", "--modify-window=-1", f"{self.a}/", url],
            stdout=subprocess.DEVNULL,
            stderr=err.open("wb"),
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"rsync push failed ({proc.returncode}): {err.read_text()}")
        self.extra_cpu += usage.ru_utime + usage.ru_stime
        self.extra_rss += usage.ru_maxrss * 1024

    def _stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def roots(self) -> list[int]:
        return [self.proc.pid] if self.proc else []

    def daemons(self) -> dict[str, list[int]]:
        return {"B (rsyncd)": [self.proc.pid]} if self.proc else {}

    def wire(self) -> Wire:
        c = self.pr.snapshot()
        return Wire(up=c.inbound, down=c.inbound, total=c.total)

    def restart_a(self, timeout: float) -> float:
        """No daemon to restart: one push of the unchanged folder (what it costs rsync to
        find out that nothing changed)."""
        start = time.perf_counter()
        self.push()
        return time.perf_counter() - start
