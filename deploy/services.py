"""The processes of the scaled stack, each a real process on 127.0.0.1: moto (S3),
`syncd server`, haproxy. Used by `deploy/stack.py` and by the tests (not a copy)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

DEPLOY = Path(__file__).resolve().parent


_PORT_LOCK = threading.Lock()
_HANDED_OUT: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing listens on, for a process the caller starts next.

    It comes from below the kernel's ephemeral range, so that between this check and the
    child's bind no outgoing connection and no `bind(("127.0.0.1", 0))` elsewhere (our
    proxies, other fixtures) can take it; and it is never handed out twice by one process
    (harness threads start contenders side by side).
    """
    low = _ephemeral_low()
    with _PORT_LOCK:
        if low > 11000:
            for _ in range(200):
                port = random.randrange(10000, low)
                if port in _HANDED_OUT:
                    continue
                with socket.socket() as s:
                    try:
                        s.bind(("127.0.0.1", port))
                    except OSError:
                        continue
                _HANDED_OUT.add(port)
                return port
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        _HANDED_OUT.add(port)
        return port


def wait_until(ok: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def answers(url: str, want: int = 200) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == want
    except httpx.TransportError:
        return False


@dataclass
class Proc:
    """A child process with its output in a log file; stop() is TERM, then KILL."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen | None = None

    def start(self) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,  # Ctrl-C in a terminal reaches the stack, not these
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited; its log ({self.log_path}) ends:\n{tail}")

    def stop(self, grace: float = 10.0) -> None:
        if self.alive():
            assert self.popen is not None
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.popen = None

    def kill(self) -> None:
        """kill -9: the crash the stack must survive."""
        if self.alive():
            assert self.popen is not None
            self.popen.kill()
            self.popen.wait()
        self.popen = None


def _venv_tool(name: str) -> str | None:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


@dataclass
class Moto:
    """moto's S3 server (`moto[server]`): the real S3 wire protocol on 127.0.0.1."""

    workdir: Path
    port: int = 0
    proc: Proc | None = None

    @staticmethod
    def available() -> str | None:
        """None if moto_server can run here, else why not."""
        return None if _venv_tool("moto_server") else "moto_server not installed (moto[server])"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Moto:
        tool = _venv_tool("moto_server")
        if tool is None:
            raise RuntimeError(self.available())
        self.port = self.port or free_port()
        argv = [tool, "-H", "127.0.0.1", "-p", str(self.port)]
        self.proc = Proc("moto", argv, self.workdir / "moto.log").start()
        wait_until(self._ready, "moto_server to answer")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        self.proc.check_alive()
        return answers(self.endpoint + "/moto-api/data.json")

    def create_bucket(self, bucket: str) -> None:
        r = httpx.put(f"{self.endpoint}/{bucket}", timeout=10)
        if r.status_code not in (200, 409):
            raise RuntimeError(f"moto: creating bucket {bucket}: {r.status_code} {r.text}")

    def url(self, bucket: str, prefix: str = "chunks") -> str:
        """The `--blocks` URL for a bucket here (moto accepts any credentials)."""
        return (
            f"s3://{bucket}/{prefix}?endpoint={self.endpoint}&region=us-east-1"
            "&access_key_id=moto&secret_access_key=moto"
        )

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()
