"""Tokens and passwords never reach a log or the terminal, and a device's state is
private to its user: a whole session — link, a failed login, sync, status, list,
revoke, a revoked daemon — then every log and every CLI output is searched for them."""

from __future__ import annotations

import json
import os
import secrets
import stat

import httpx

from tests.support.devices import DeviceProc, converge, syncd, wait_for, write


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_no_secret_in_any_log_or_output_and_the_state_is_private(server):
    password = "pw-" + secrets.token_hex(8)
    wrong = "wrong-" + secrets.token_hex(8)
    server.adduser("secretive", password)
    a, b = DeviceProc("alpha", server), DeviceProc("beta", server)
    outputs: list[str] = []

    def run(dev: DeviceProc, *args: str, stdin: str | None = None, check: bool = True):
        out = syncd(*args, home=dev.home, stdin=stdin, check=check)
        outputs.append(out.stdout + out.stderr)
        return out

    try:
        failed = run(a, "link", server.url, "--user", "secretive", "--folder", str(a.folder),
                     "--password-stdin", stdin=wrong + "\n", check=False)  # fmt: skip
        assert failed.returncode != 0
        r = httpx.post(
            server.url + "/v1/login",
            json={"user": "secretive", "password": wrong, "device": "x"},
        )
        assert r.status_code == 401 and wrong not in r.text
        for dev in (a, b):
            run(dev, "link", server.url, "--user", "secretive", "--folder", str(dev.folder),
                "--device", dev.name, "--password-stdin", stdin=password + "\n")  # fmt: skip
            dev.start()
        tokens = [(dev.home / "token").read_text().strip() for dev in (a, b)]
        write(a.folder / "doc.txt", "hello")
        converge(a, b)
        for args in (("status",), ("status", "--json"), ("ls",), ("history", "doc.txt"),
                     ("devices",), ("devices", "--json"), ("conflicts",)):  # fmt: skip
            run(a, *args)
        beta_id = next(
            d["id"] for d in json.loads(run(a, "devices", "--json").stdout) if d["name"] == "beta"
        )
        run(a, "devices", "revoke", str(beta_id))
        write(b.folder / "after.txt", "beta is logged out")
        wait_for(lambda: b.status()["state"] == "error", "beta to notice its token is revoked")
        outputs.append(json.dumps(b.status()))
        run(b, "status")

        # the state folder, its token, config, log and socket: the user's only
        for dev in (a, b):
            assert _mode(dev.home) == 0o700
            for name in ("token", "config.json", "daemon.log", "control.sock"):
                assert _mode(dev.home / name) == 0o600, name
            for name in os.listdir(dev.home):
                assert _mode(dev.home / name) & 0o077 == 0, name  # index and its WAL too
            assert _mode(dev.folder / ".syncd") == 0o700
    finally:
        a.stop()
        b.stop()
    logs = [server.log_path.read_text(errors="replace")]
    for dev in (a, b):
        logs += [
            (dev.home / "daemon.log").read_text(errors="replace"),
            (dev.base / "daemon.out").read_text(errors="replace"),
        ]
    assert "401" in logs[0] and "revoked" in logs[-2] + logs[-1]  # the session really ran
    everything = "\n".join(logs + outputs)
    for secret in (password, wrong, *tokens):
        assert secret not in everything
    for dev in (a, b):
        dev.cleanup()
