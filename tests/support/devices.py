"""Real client daemons (`syncd start --foreground` processes) on temp folders, for tests."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.server import ServerProc, stop_process

# Tests run headless: the token goes to the 0600 file fallback, never a real keyring.
HEADLESS_ENV = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def syncd(*args: str, home: Path, stdin: str | None = None, check: bool = True):
    env = {**os.environ, **HEADLESS_ENV}
    out = subprocess.run(
        [sys.executable, "-m", "syncd", "--home", str(home), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if check and out.returncode != 0:
        raise RuntimeError(f"syncd {' '.join(args)} failed ({out.returncode}):\n{out.stderr}")
    return out


def snapshot(folder: Path) -> dict[str, tuple]:
    """{relative path: ("dir",) | ("file", bytes, executable)} — the user-visible tree.
    A file that vanishes while the tree is read (the daemon is still moving things)
    starts the walk over: the snapshot is of one moment's tree, never a mix."""
    while True:
        try:
            return _walk(folder)
        except FileNotFoundError:
            continue


def _walk(folder: Path) -> dict[str, tuple]:
    tree: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        rel_dir = os.path.relpath(dirpath, folder)
        if rel_dir == ".syncd" or rel_dir.startswith(".syncd" + os.sep):
            continue
        dirnames[:] = [d for d in dirnames if not (rel_dir == "." and d == ".syncd")]
        for d in dirnames:
            tree[os.path.normpath(os.path.join(rel_dir, d))] = ("dir",)
        for f in filenames:
            full = os.path.join(dirpath, f)
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode):
                continue
            with open(full, "rb") as fh:
                tree[os.path.normpath(os.path.join(rel_dir, f))] = (
                    "file",
                    fh.read(),
                    bool(st.st_mode & 0o100),
                )
    return tree


def write(path: Path, data: bytes | str) -> None:
    """Write a file in a device's folder, creating its parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    """Wait until `cond()` holds (a generous bound against hangs, not a speed check)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.05)


@dataclass
class DeviceProc:
    name: str
    server: ServerProc
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sd-")))
    proc: subprocess.Popen | None = None
    env_extra: dict[str, str] = field(default_factory=dict)  # more environment for the daemon
    env_drop: tuple[str, ...] = ()  # variables the daemon must not see
    via: str | None = None  # link to this URL (a FaultProxy's) instead of the server's

    @property
    def home(self) -> Path:
        return self.base / "home"

    @property
    def folder(self) -> Path:
        return self.base / "folder"

    def link(self, user: str, password: str = "correct horse") -> None:
        args = ["link", self.via or self.server.url, "--user", user, "--folder", str(self.folder)]
        args += ["--device", self.name, "--password-stdin"]
        if self.server.ca:
            args += ["--ca", self.server.ca]
        syncd(*args, home=self.home, stdin=password + "\n")

    def start(self) -> DeviceProc:
        log = (self.base / "daemon.out").open("ab")
        env = {k: v for k, v in os.environ.items() if k not in self.env_drop}
        env.update({**HEADLESS_ENV, **self.env_extra})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "--home", str(self.home), "start", "--foreground"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        wait_for(self._answers, f"daemon {self.name} answering its control socket", 60)
        return self

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"daemon {self.name} died:\n{self.output()}")
        try:
            self.status()
        except Exception:
            return False
        return True

    def output(self) -> str:
        path = self.base / "daemon.out"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def status(self) -> dict:
        from syncd.control import control_request

        return control_request(self.home / "control.sock", "status", timeout=10)

    def control(self, cmd: str, **args: object) -> dict:
        from syncd.control import control_request

        return control_request(self.home / "control.sock", cmd, timeout=30, **args)

    def daemon_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def idle(self) -> bool:
        st = self.status()
        return st["state"] == "up to date"

    def stop(self) -> None:
        stop_process(self.proc, 20)
        self.proc = None

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def tree(self) -> dict[str, tuple]:
        return snapshot(self.folder)

    def json_status(self) -> str:
        return json.dumps(self.status(), indent=1)


def converge(*devices: DeviceProc, timeout: float = 90.0) -> dict[str, tuple]:
    """Wait until every device is up to date and all folders are identical."""

    def same() -> bool:
        trees = [d.tree() for d in devices]
        return all(t == trees[0] for t in trees) and all(d.idle() for d in devices)

    try:
        wait_for(same, "devices to converge", timeout)
    except AssertionError:
        detail = "\n".join(
            f"--- {d.name}: {sorted(d.tree())}\n{d.json_status()}\n{d.output()[-2000:]}"
            for d in devices
        )
        raise AssertionError(f"devices did not converge:\n{detail}") from None
    return devices[0].tree()
