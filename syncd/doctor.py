"""`syncd doctor`: checks this device's setup and explains what to fix.

Each check is a small function returning a `Check` (ok / warn / fail / skip, what was
found, and the exact command or step that fixes it); the pure parts (limits, sizes)
are separate functions so their thresholds are tested without a real disk or kernel.
"""

from __future__ import annotations

import os
import shutil
import ssl
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from syncd.display import human_size, plural
from syncd.errors import AuthError, FatalError, SyncdError, TransportError
from syncd.home import ClientConfig, ClientHome

INOTIFY_PATH = "/proc/sys/fs/inotify/max_user_watches"
SYSCTL_FILE = "/etc/sysctl.d/90-syncd-inotify.conf"
MIN_SUGGESTED_WATCHES = 524_288
FREE_FAIL = 100 * 1000 * 1000  # bytes: below this, downloads will fail
FREE_WARN = 1000 * 1000 * 1000
RELINK = "link again: syncd link URL --user NAME --folder PATH"
MARKS = {"ok": "✔", "warn": "!", "fail": "✘", "skip": "-"}


@dataclass(frozen=True)
class Check:
    name: str
    level: str  # "ok" | "warn" | "fail" | "skip"
    message: str
    fix: str = ""


# -- pure judgements -------------------------------------------------------------------------
def suggested_watches(dirs: int) -> int:
    """Room for twice the folders (others use watches too), in steps of 64 Ki."""
    step = 65_536
    return max(MIN_SUGGESTED_WATCHES, -(-2 * dirs // step) * step)


def inotify_check(limit: int, dirs: int) -> Check:
    """One inotify watch per folder (watchdog); the limit is shared by the user's apps."""
    n = suggested_watches(dirs)
    fix = (
        f"sudo sysctl fs.inotify.max_user_watches={n}   # now; to keep it after a reboot:\n"
        f"echo fs.inotify.max_user_watches={n} | sudo tee {SYSCTL_FILE}"
    )
    what = f"{plural(dirs, 'folder')} to watch, limit {limit:,} inotify watches"
    if dirs >= limit:
        return Check("inotify", "fail", f"{what}: changes in some folders go unnoticed", fix)
    if dirs * 2 > limit:
        return Check("inotify", "warn", f"{what}: other programs may use up the rest", fix)
    return Check("inotify", "ok", what)


def disk_check(free: int, total: int, where: str) -> Check:
    what = f"{human_size(free)} free of {human_size(total)} on {where}"
    if free < FREE_FAIL:
        return Check("disk", "fail", f"{what}: downloads will fail", "free some space")
    if free < FREE_WARN or (total and free < total * 0.05):
        return Check("disk", "warn", f"{what}: running low", "free some space")
    return Check("disk", "ok", what)


# -- checks that look at the machine ---------------------------------------------------------
def check_config(home: ClientHome) -> tuple[Check, ClientConfig | None]:
    try:
        cfg = home.load_config()
    except FatalError as exc:
        return Check("config", "fail", str(exc), "syncd link URL --user NAME --folder PATH"), None
    return Check("config", "ok", f"linked as {cfg.user} ({cfg.device}) in {home.root}"), cfg


def _verify(cfg: ClientConfig) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=cfg.ca) if cfg.ca else True


def check_server(cfg: ClientConfig) -> Check:
    import httpx

    url = cfg.server_url + "/healthz"
    try:
        r = httpx.get(url, timeout=5.0, verify=_verify(cfg))
    except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
        fix = "is the server running? check the URL, the network, or a firewall"
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            fix = "the server's TLS certificate is not trusted; link again with --ca CA.pem"
        return Check("server", "fail", f"cannot reach {cfg.server_url}: {exc}", fix)
    if r.status_code != 200:
        return Check("server", "fail", f"{url} answered {r.status_code}", "see the server's log")
    return Check("server", "ok", f"{cfg.server_url} answers")


def check_token(home: ClientHome, cfg: ClientConfig) -> Check:
    from syncd.credentials import load_token
    from syncd.transport.client import ServerClient

    try:
        token = load_token(home, cfg)
    except FatalError as exc:
        return Check("token", "fail", str(exc), RELINK)
    client = ServerClient(cfg.server_url, token, ca=cfg.ca, attempts=1, timeout=10.0)
    try:
        me = client.me()
    except AuthError as exc:
        return Check(
            "token",
            "fail",
            f"the server refused this device's token: {exc}",
            RELINK,
        )
    except TransportError as exc:
        return Check("token", "skip", f"not checked: {exc}")
    finally:
        client.close()
    return Check("token", "ok", f"valid: user {me.get('user', cfg.user)}, device {cfg.device}")


def check_keyring(home: ClientHome) -> Check:
    import keyring

    backend = keyring.get_keyring()
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    path = home.token_path
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            return Check(
                "keyring",
                "fail",
                f"{path} is readable by others (mode {mode:o})",
                f"chmod 600 {path}",
            )
        return Check(
            "keyring",
            "warn",
            f"no working OS keyring (backend {name}): the token is in {path} (mode 0600)",
            "on a desktop, install and unlock a Secret Service keyring (e.g. gnome-keyring),"
            " then " + RELINK,
        )
    return Check("keyring", "ok", f"the token is in the OS keyring (backend {name})")


def count_dirs(folder: Path) -> tuple[int, list[str]]:
    """Folders under `folder` (itself included, the state folder not), and those that
    cannot be read."""
    count, unreadable = 0, []
    stack = [folder]
    while stack:
        here = stack.pop()
        count += 1
        try:
            with os.scandir(here) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False) and not (
                        here == folder and entry.name == ".syncd"
                    ):
                        stack.append(Path(entry.path))
        except OSError:
            unreadable.append(str(here))
    return count, unreadable


def check_inotify(dirs: int, read: Callable[[], str] | None = None) -> Check:
    if not sys.platform.startswith("linux"):
        return Check("inotify", "skip", "not Linux: no inotify watch limit")
    try:
        text = read() if read else Path(INOTIFY_PATH).read_text()
        limit = int(text.strip())
    except (OSError, ValueError) as exc:
        return Check("inotify", "skip", f"cannot read {INOTIFY_PATH}: {exc}")
    return inotify_check(limit, dirs)


def check_disk(folder: Path) -> Check:
    try:
        usage = shutil.disk_usage(folder)
    except OSError as exc:
        return Check("disk", "skip", f"cannot tell free space on {folder}: {exc.strerror}")
    return disk_check(usage.free, usage.total, str(folder))


def check_permissions(home: ClientHome, folder: Path, unreadable: list[str]) -> Check:
    if not folder.is_dir():
        return Check(
            "permissions",
            "fail",
            f"the sync folder {folder} does not exist",
            f"mkdir -p {folder}, or if it is on a disk that is not mounted: mount it",
        )
    if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
        return Check(
            "permissions", "fail", f"you cannot read and write {folder}", f"chmod u+rwx {folder}"
        )
    mode = stat.S_IMODE(home.root.stat().st_mode)
    if mode & 0o077:
        return Check(
            "permissions",
            "warn",
            f"the state directory {home.root} is open to others (mode {mode:o})",
            f"chmod 700 {home.root}",
        )
    if unreadable:
        shown = ", ".join(unreadable[:3]) + (" …" if len(unreadable) > 3 else "")
        return Check(
            "permissions",
            "warn",
            f"{len(unreadable)} folder(s) cannot be read and are not synced: {shown}",
            "chmod u+rx on them",
        )
    return Check("permissions", "ok", f"{folder} is readable and writable")


def check_daemon(home: ClientHome) -> Check:
    from syncd.control import DaemonNotRunning, control_request
    from syncd.display import status_line

    try:
        st = control_request(home.socket_path, "status", timeout=10.0)
    except DaemonNotRunning:
        return Check("daemon", "warn", "syncd is not running", "syncd start")
    except SyncdError as exc:
        return Check("daemon", "fail", str(exc), f"see {home.log_path}")
    return Check("daemon", "ok", f"running: {status_line(st, float(st.get('now') or 0))}")


def run_checks(home: ClientHome) -> list[Check]:
    config, cfg = check_config(home)
    checks = [config]
    if cfg is None:
        return checks
    folder = Path(cfg.folder)
    dirs, unreadable = count_dirs(folder) if folder.is_dir() else (0, [])
    server = check_server(cfg)
    checks += [
        server,
        check_token(home, cfg)
        if server.level == "ok"
        else Check("token", "skip", "not checked: the server is unreachable"),
        check_keyring(home),
        check_inotify(dirs),
        check_disk(folder if folder.is_dir() else home.root),
        check_permissions(home, folder, unreadable),
        check_daemon(home),
    ]
    return checks


def report(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"{MARKS[c.level]} {c.name:<12} {c.message}")
        for fix_line in c.fix.splitlines() if c.level in ("warn", "fail") else []:
            lines.append(f"  {'':<12} fix: {fix_line}")
    failed = sum(c.level == "fail" for c in checks)
    warned = sum(c.level == "warn" for c in checks)
    lines.append(
        "All checks passed."
        if not failed and not warned
        else f"{failed} failed, {warned} warnings."
    )
    return "\n".join(lines)
