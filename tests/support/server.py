"""A real `syncd server` process on 127.0.0.1 with an ephemeral port, for tests."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy.services import free_port

# Small chunks keep tests fast while still exercising multi-chunk files.
TEST_CHUNKING = (1024, 4096, 16384)


def stop_process(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited after `timeout` seconds."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class ServerProc:
    data: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    log_path: Path = field(init=False)
    env_extra: dict[str, str] = field(default_factory=dict)
    chunking: tuple[int, int, int] | None = TEST_CHUNKING  # None: the server's default
    extra_args: list[str] = field(default_factory=list)  # more `syncd server` options
    ca: str | None = None  # with --tls-cert: the CA (PEM) that signed it; the URL is https
    meta_url: str | None = None  # --meta for the server and adduser (None: SQLite in data)

    def __post_init__(self) -> None:
        self.log_path = self.data.parent / f"{self.data.name}.log"

    @property
    def url(self) -> str:
        scheme = "https" if self.ca else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> ServerProc:
        for _ in range(5):
            self.port = self.port or free_port()
            env = self._env()
            log = self.log_path.open("ab")
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "syncd", "server", "--data", str(self.data)]  # noqa: RUF005
                + ["--port", str(self.port), "--log-level", "info", *self._meta_args()]
                + self.extra_args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            if self._wait_ready():
                return self
            self.stop()
            self.port = 0
        raise RuntimeError(f"server did not start; log:\n{self.log_path.read_text()}")

    def _meta_args(self) -> list[str]:
        return ["--meta", self.meta_url] if self.meta_url else []

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "SYNCD_CHUNKING"}
        if self.chunking is not None:
            env["SYNCD_CHUNKING"] = ",".join(map(str, self.chunking))
        return {**env, **self.env_extra}

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                verify = ssl.create_default_context(cafile=self.ca) if self.ca else True
                if httpx.get(self.url + "/healthz", timeout=1, verify=verify).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def adduser(self, name: str, password: str = "correct horse", email: str | None = None) -> str:
        cmd = [sys.executable, "-m", "syncd", "server", "adduser", name, "--data", str(self.data)]
        cmd += ["--password-stdin", *self._meta_args()] + (["--email", email] if email else [])
        env = self._env()
        out = subprocess.run(
            cmd, input=password + "\n", capture_output=True, text=True, env=env, check=False
        )
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        return out.stdout


@dataclass
class Session:
    """A logged-in device: an httpx client with its token, and its namespace."""

    client: httpx.Client
    token: str
    ns: int
    device_id: int
    chunking: dict

    def ns_url(self, tail: str) -> str:
        return f"/v1/ns/{self.ns}/{tail}"


def login(server: ServerProc, user: str, password: str = "correct horse", device: str = "dev"):
    r = httpx.post(
        server.url + "/v1/login", json={"user": user, "password": password, "device": device}
    )
    r.raise_for_status()
    body = r.json()
    client = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {body['token']}"}, timeout=30
    )
    return Session(client, body["token"], body["namespace"], body["device_id"], body["chunking"])
