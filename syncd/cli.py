"""The `syncd` command line (click): client commands, and server commands under `syncd server`.

Client commands other than `link` and `start` are thin clients of the daemon's control
socket (syncd/control.py); they never touch the index or the folder.

Exit codes: 0 success (also `start` when already running and `stop` when not running:
both are idempotent); 1 an error, with its message on stderr; 2 a usage error or an
invalid path; 3 no daemon is running; 4 the server refused the credentials (AuthError).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import posixpath
import socket
import ssl
import sys
import threading
import time
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from syncd import __version__
from syncd.control import control_request
from syncd.daemonize import (
    AlreadyRunning,
    PidFile,
    run_foreground,
    spawn_daemon,
    stop_daemon,
    use_daemon_allocator,
)
from syncd.display import clock, human_size
from syncd.errors import (
    FatalError,
    InvalidPath,
    Offline,
    SyncdError,
)
from syncd.home import NOT_LINKED, ClientConfig, ClientHome, default_state_dir
from syncd.paths import validate_path

QUICK = 10.0  # seconds: commands the daemon answers from memory
SLOW = 120.0  # seconds: commands that make the daemon ask the server (with its retries)
LOG_LEVELS = click.Choice(["debug", "info", "warning", "error"], case_sensitive=False)


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.UsageError("the password must not be empty")
    return password


class _Group(click.Group):
    """Prints a SyncdError as `error: message` and exits with its code, in any runner."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SyncdError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="syncd")
@click.option(
    "--home",
    "home_dir",
    envvar="SYNCD_HOME",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="This device's state directory [env: SYNCD_HOME; default: the user state dir].",
)
@click.pass_context
def main(ctx: click.Context, home_dir: Path | None) -> None:
    """syncd: keep a folder identical on all your devices."""
    ctx.obj = ClientHome.resolve(home_dir)


@main.group(invoke_without_command=True)
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Server data directory (metadata and chunks). Default: the user data dir.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8484, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--meta",
    "meta_url",
    default=None,
    help="Metadata store URL: sqlite:///PATH (default: in --data), postgresql://HOST/DB,"
    " or pgshards://?directory=URL&shard=URL…",
)
@click.option("--blocks", "blocks_url", default=None, help="Chunk store URL (file:///DIR).")
@click.option("--notify", "notify_url", default="memory://", help="Notifier URL (memory://).")
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Serve HTTPS with this certificate chain (PEM); needs --tls-key.",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The private key (PEM) of --tls-cert.",
)
@click.option("--quota", default=None, help="Storage quota per user, e.g. 10GiB [unlimited].")
@click.option(
    "--chunk-redirect",
    type=click.FloatRange(min=1),
    default=None,
    metavar="SECONDS",
    help="Answer chunk downloads with a redirect to a signed URL valid this long (S3 only),"
    " so an HTTP cache or CDN can carry them.",
)
@click.option(
    "--rate-limit-storage",
    default="memory://",
    show_default=True,
    help="Where failed-login counters live; share one (redis://HOST:PORT) across processes.",
)
@click.pass_context
def server(
    ctx: click.Context,
    data: Path | None,
    host: str,
    port: int,
    meta_url: str | None,
    blocks_url: str | None,
    notify_url: str,
    log_level: str,
    tls_cert: Path | None,
    tls_key: Path | None,
    quota: str | None,
    rate_limit_storage: str,
    chunk_redirect: float | None,
) -> None:
    """Run the sync server in the foreground (embedded: SQLite + local disk)."""
    if ctx.invoked_subcommand is not None:
        return
    from syncd.server.config import ServerConfig, default_data_dir
    from syncd.server.main import TLS, serve
    from syncd.server.quota import parse_size
    from syncd.server.ratelimit import Limits

    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    try:
        quota_bytes = parse_size(quota) if quota else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--quota") from None
    config = ServerConfig(
        data=data or default_data_dir(),
        meta_url=meta_url,
        blocks_url=blocks_url,
        notify_url=notify_url,
        quota_bytes=quota_bytes,
        limits=Limits(storage_url=rate_limit_storage),
        chunk_redirect_ttl=chunk_redirect,
    )
    tls = TLS(tls_cert, tls_key) if tls_cert and tls_key else None
    scheme = "https" if tls else "http"
    click.echo(
        f"syncd server: data in {config.data}, listening on {scheme}://{host}:{port}", err=True
    )
    serve(config, host, port, log_level, tls=tls)


@server.command("adduser")
@click.argument("name")
@click.option("--email", default=None, help="The user's e-mail address.")
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Server data directory (needed unless --meta names the metadata store).",
)
@click.option("--meta", "meta_url", default=None, help="Metadata store URL, as for the server.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def adduser(
    name: str, email: str | None, data: Path | None, meta_url: str | None, password_stdin: bool
) -> None:
    """Create a user (with their own namespace) on the server's data."""
    from syncd.server.config import ServerConfig, default_data_dir
    from syncd.server.main import add_user
    from syncd.server.metastore import MetaStoreUnavailable

    if data is None and meta_url is None:
        raise click.UsageError("give --data DIR (or --meta URL)")
    if not name.strip() or len(name) > 128 or any(ord(c) < 32 for c in name):
        raise click.UsageError("a user name is 1-128 printable characters")
    password = _read_password(password_stdin)
    try:
        config = ServerConfig(data=data or default_data_dir(), meta_url=meta_url)
        user = add_user(config, name, email, password)
    except (ValueError, MetaStoreUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created user {user.name!r} (namespace {user.namespace})")


@server.command("reshard")
@click.option(
    "--meta",
    "meta_url",
    required=True,
    help="The metadata store, as given to `syncd server --meta` (PostgreSQL).",
)
@click.option(
    "--add", "add", multiple=True, metavar="URL", help="A new shard (PostgreSQL URL); repeatable."
)
def reshard(meta_url: str, add: tuple[str, ...]) -> None:
    """Add metadata shards and move the namespaces the ring now gives them, while servers
    run. Without --add: finish an interrupted reshard."""
    from syncd.server.metastore import MetaStoreUnavailable
    from syncd.server.metastore.reshard import ReshardError, run

    try:
        click.echo(run(meta_url, add, lambda line: click.echo(line, err=True)))
    except (ValueError, MetaStoreUnavailable, ReshardError) as exc:
        raise click.ClickException(str(exc)) from None


# -- linking -------------------------------------------------------------------------------
def _login(url: str, user: str, password: str, device: str, ca: str | None = None) -> dict:
    """POST /v1/login; the one request the CLI sends to the server itself."""
    from syncd.transport.client import ServerClient

    try:
        client = ServerClient(url, attempts=2, ca=ca)
    except (OSError, ssl.SSLError) as exc:
        raise FatalError(f"cannot use {ca} as a CA certificate: {exc}") from None
    try:
        body = client.login(user, password, device)
    except Offline as exc:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            hint = "" if ca else "; if it is signed by a private CA, pass --ca CA.pem"
            raise FatalError(f"{url}: the server's TLS certificate is not trusted{hint}") from None
        raise Offline(f"cannot reach the server at {url}: {exc}") from None
    except ValueError:
        body = None
    finally:
        client.close()
    if not isinstance(body, dict) or not isinstance(body.get("token"), str):
        raise FatalError(f"{url} did not answer like a syncd server")
    return body


def _check_url(url: str) -> str:
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter("expected http://HOST[:PORT] or https://...", param_hint="URL")
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        click.echo(
            "warning: plain http: your password and token cross the network unencrypted", err=True
        )
    return url


def _forget_index(home: ClientHome) -> None:
    """The index describes one (server, namespace, folder); a new link starts afresh."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{home.index_path}{suffix}").unlink(missing_ok=True)


@main.command()
@click.argument("url")
@click.option("--user", required=True, help="Your user name on the server.")
@click.option(
    "--folder",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder to keep in sync (created if missing).",
)
@click.option("--device", default=None, help="This device's name [default: the host name].")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Verify the server's TLS certificate with this private CA (PEM).",
)
@click.option(
    "--autostart/--no-autostart",
    default=None,
    help="Start syncd (and its tray icon) at login [default: ask, if interactive].",
)
@click.pass_obj
def link(
    home: ClientHome,
    url: str,
    user: str,
    folder: Path,
    device: str | None,
    password_stdin: bool,
    ca: Path | None,
    autostart: bool | None,
) -> None:
    """Log this device in to the server at URL and choose the folder to sync."""
    from syncd.credentials import KEYRING, delete_token, save_token  # keyring loads slowly

    url = _check_url(url)
    device = device or socket.gethostname() or "device"
    folder = folder.expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise FatalError(f"{folder} exists and is not a folder")
    if home.root.resolve().is_relative_to(folder):
        raise FatalError(f"the state directory {home.root} must not be inside the sync folder")
    if PidFile(home.pid_path).is_running():
        raise FatalError("the daemon is running; stop it first: syncd stop")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(f"Password for {user}", hide_input=True)
    if not password:
        raise click.UsageError("the password must not be empty")
    ca_path = str(ca.resolve()) if ca else None
    body = _login(url, user, password, device, ca_path)
    try:
        cfg = ClientConfig.from_dict(
            {
                "server_url": url,
                "user": body.get("user", user),
                "device": body.get("device", device),
                "device_id": body.get("device_id"),
                "namespace": body.get("namespace"),
                "folder": str(folder),
                "chunking": body.get("chunking") or {},
                "ca": ca_path,
            }
        )
    except ValueError as exc:
        raise FatalError(f"unexpected login answer from {url}: {exc}") from None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FatalError(f"cannot create {folder}: {exc.strerror}") from None
    home.ensure()
    if home.is_linked():
        try:
            old = home.load_config()
        except FatalError:
            _forget_index(home)
        else:
            delete_token(home, old)
            if (old.server_url, old.namespace, old.folder) != (url, cfg.namespace, cfg.folder):
                _forget_index(home)
    where = save_token(home, cfg, body["token"])
    home.save_config(cfg)
    if where != KEYRING:
        click.echo(
            f"warning: no working OS keyring here; the device token is stored in {where} "
            "(mode 0600, readable only by you)",
            err=True,
        )
    click.echo(f"Linked device {cfg.device!r} (id {cfg.device_id}) of {cfg.user} at {url}")
    click.echo(f"Folder: {folder}")
    if autostart is None and not password_stdin and sys.stdin.isatty():
        autostart = click.confirm("Start syncd automatically when you log in?", default=True)
    if autostart:
        for line in _autostart(home).enable():
            click.echo(f"autostart: {line}")
    elif autostart is None:
        click.echo("Start syncd at login with: syncd autostart enable")
    click.echo("Start syncing with: syncd start")


# -- the daemon ------------------------------------------------------------------------------
def _run_daemon(home: ClientHome, stop: threading.Event) -> None:
    from syncd.daemon import run_daemon  # the engine loads only in the daemon process

    run_daemon(home, stop)


@main.command()
@click.option("--foreground", is_flag=True, help="Run in this process (logs also on stderr).")
@click.option("--log-level", type=LOG_LEVELS, default="info", show_default=True)
@click.pass_obj
def start(home: ClientHome, foreground: bool, log_level: str) -> None:
    """Start the sync daemon (in the background unless --foreground)."""
    home.load_config()  # not linked: say so before anything starts
    if foreground:
        use_daemon_allocator()  # re-execs once (same pid) when launched as a process
        run_foreground(home, _run_daemon, log_level.lower())  # already running: exit 1
        return
    try:
        pidfile = PidFile(home.pid_path)
        if pidfile.is_running():
            raise AlreadyRunning(pidfile.read_pid())
        pid = spawn_daemon(home, log_level.lower())
    except AlreadyRunning as exc:
        click.echo(str(exc))
        return
    click.echo(f"syncd started (pid {pid}); log: {home.log_path}")


@main.command()
@click.pass_obj
def stop(home: ClientHome) -> None:
    """Stop the daemon and wait until it has exited."""
    pid = stop_daemon(home)
    click.echo("syncd is not running" if pid is None else f"syncd stopped (pid {pid})")


# -- status ----------------------------------------------------------------------------------
def _files(count: int, nbytes: int) -> str:
    return f"{count} file{'' if count == 1 else 's'} ({human_size(nbytes)})"


def _headline(st: dict, now: float) -> str:
    state = st.get("state")
    if state == "up to date":
        last = st.get("last_sync")
        return f"Up to date — last sync {clock(last, now)}" if last else "Up to date"
    if state == "syncing":
        parts = []
        if st.get("files_up"):
            parts.append(_files(st["files_up"], st.get("bytes_up") or 0) + " up")
        if st.get("files_down"):
            parts.append(_files(st["files_down"], st.get("bytes_down") or 0) + " down")
        return "Syncing: " + (", ".join(parts) or "looking for changes")
    if state == "paused":
        return "Paused"
    if state == "offline":
        since = st.get("offline_since")
        line = f"Offline since {clock(since, now)}" if since else "Offline"
        if st.get("next_retry") is not None:
            line += f", next retry in {max(0, math.ceil(st['next_retry'] - now))} s"
        if st.get("offline_reason"):
            line += f" ({st['offline_reason']})"
        return line
    if state == "error":
        err = st.get("error") or {}
        where = f"{err['path']} — " if err.get("path") else ""
        return f"Error: {where}{err.get('reason') or 'unknown'}"
    return str(state).capitalize()


def format_status(st: dict, now: float) -> str:
    """The daemon's status snapshot for people; `now` is the daemon's clock."""
    lines = [_headline(st, now)]
    if st.get("state") != "up to date":
        last = st.get("last_sync")
        lines.append(f"Last sync: {clock(last, now) if last else 'never'}")
    if st.get("folder"):
        lines.append(f"Folder: {st['folder']}")
    if st.get("server"):
        lines.append(f"Server: {st['server']} (as device {st.get('device', '?')})")
    problems = st.get("problems") or []
    if problems:
        lines.append(f"Skipped {len(problems)} path{'' if len(problems) == 1 else 's'}:")
        lines += [f"  {p.get('path')} — {p.get('reason')}" for p in problems]
    return "\n".join(lines)


def _echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@main.command()
@json_option
@click.option("--watch", is_flag=True, help="Keep watching: progress bars, rate and ETA.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1, max=30),
    default=1.0,
    show_default=True,
    help="With --watch: seconds between refreshes while nothing changes.",
)
@click.option("--until-idle", is_flag=True, help="With --watch: exit once up to date.")
@click.pass_obj
def status(home: ClientHome, as_json: bool, watch: bool, interval: float, until_idle: bool) -> None:
    """What the daemon is doing: up to date, syncing, paused, offline or an error."""
    st = control_request(home.socket_path, "status", timeout=QUICK)
    if watch:
        from syncd.watchview import watch as watch_view

        out = click.get_text_stream("stdout")
        with contextlib.suppress(KeyboardInterrupt):
            watch_view(
                home.socket_path,
                out,
                tty=out.isatty(),
                as_json=as_json,
                interval=interval,
                until_idle=until_idle,
            )
        return
    if as_json:
        _echo_json(st)
    else:
        click.echo(format_status(st, float(st.get("now") or time.time())))


@main.command()
@click.pass_obj
def pause(home: ClientHome) -> None:
    """Pause syncing (changes are still noticed, and sent on resume)."""
    control_request(home.socket_path, "pause", timeout=QUICK)
    click.echo("Paused")


@main.command()
@click.pass_obj
def resume(home: ClientHome) -> None:
    """Resume syncing after `syncd pause`."""
    control_request(home.socket_path, "resume", timeout=QUICK)
    click.echo("Resumed")


# -- paths -----------------------------------------------------------------------------------
def to_sync_path(arg: str, folder: Path, cwd: Path, *, allow_root: bool = False) -> str:
    """A PATH argument as a sync path (relative, '/'-separated, NFC).

    Absolute paths, paths starting with ./ or ../, and any path typed while the current
    directory is inside the sync folder are filesystem paths and must lie inside the
    folder; other relative paths are taken relative to the sync folder itself.
    """
    roots = [folder.absolute(), folder.resolve()]
    path = Path(arg).expanduser() if arg == "~" or arg.startswith("~/") else Path(arg)
    here = Path(os.path.normpath(cwd.absolute()))
    in_folder = any(here.is_relative_to(r) for r in roots) or any(
        here.resolve().is_relative_to(r) for r in roots
    )
    if path.is_absolute() or in_folder or arg in (".", "..") or arg.startswith(("./", "../")):
        full = Path(os.path.normpath(here / path))
        candidates = [full, full.parent.resolve() / full.name] if full.name else [full]
        for cand in candidates:
            for root in roots:
                if cand.is_relative_to(root):
                    return _finish(cand.relative_to(root).as_posix(), arg, allow_root)
        raise InvalidPath(arg, f"not inside the sync folder {folder}")
    return _finish(posixpath.normpath(arg.replace(os.sep, "/")), arg, allow_root)


def _finish(rel: str, arg: str, allow_root: bool) -> str:
    rel = unicodedata.normalize("NFC", rel).strip("/")
    if rel in ("", "."):
        if allow_root:
            return ""
        raise InvalidPath(arg, "names the sync folder itself, not a file in it")
    if rel == ".." or rel.startswith("../"):
        raise InvalidPath(arg, "outside the sync folder")
    return validate_path(rel)


def _folder(home: ClientHome) -> Path:
    if home.is_linked():
        return Path(home.load_config().folder)
    folder = control_request(home.socket_path, "status", timeout=QUICK).get("folder")
    if not folder:
        raise FatalError(NOT_LINKED)
    return Path(folder)


def _sync_path(home: ClientHome, arg: str, allow_root: bool = False) -> str:
    folder = _folder(home)
    try:
        cwd = Path.cwd()
    except FileNotFoundError:  # the current directory was deleted
        cwd = Path("/")
    return to_sync_path(arg, folder, cwd, allow_root=allow_root)


# -- browsing the server ------------------------------------------------------------------
def _when(entry: dict, now: float) -> str:
    if entry.get("mtime_ns"):
        return clock(entry["mtime_ns"] / 1e9, now)
    return clock(entry["server_time"], now) if entry.get("server_time") else "-"


@main.command("ls")
@click.argument("path", required=False, default="")
@json_option
@click.pass_obj
def ls_cmd(home: ClientHome, path: str, as_json: bool) -> None:
    """List a folder as the server has it (default: the top of the sync folder)."""
    sync_path = _sync_path(home, path, allow_root=True) if path else ""
    entries = control_request(home.socket_path, "ls", timeout=SLOW, path=sync_path)["entries"]
    entries = [e for e in entries if not e.get("deleted")]
    if as_json:
        _echo_json(entries)
        return
    now = time.time()
    entries.sort(key=lambda e: (not e.get("is_folder"), str(e.get("name", "")).casefold()))
    for e in entries:
        if e.get("is_folder"):
            click.echo(f"{'':>10}  {'':>19}  {e.get('name')}/")
        else:
            size = human_size(int(e.get("size") or 0))
            click.echo(f"{size:>10}  {_when(e, now):>19}  {e.get('name')}")


@main.command()
@click.argument("path")
@json_option
@click.pass_obj
def history(home: ClientHome, path: str, as_json: bool) -> None:
    """The revisions of PATH on the server, newest first."""
    sync_path = _sync_path(home, path)
    entries = control_request(home.socket_path, "history", timeout=SLOW, path=sync_path)["entries"]
    if as_json:
        _echo_json(entries)
        return
    now = time.time()
    for i, e in enumerate(entries):
        what = "deleted" if e.get("deleted") else human_size(int(e.get("size") or 0))
        when = clock(e["server_time"], now) if e.get("server_time") else "-"
        mark = "  (current)" if i == 0 else ""
        click.echo(f"rev {e.get('rev')!s:<8} {when:>19}  {what:>10}  {e.get('device', '')}{mark}")


@main.command()
@click.argument("path")
@click.option("--rev", type=click.IntRange(min=1), default=None, help="Revision to bring back.")
@click.pass_obj
def restore(home: ClientHome, path: str, rev: int | None) -> None:
    """Bring back an earlier revision of PATH (default: the one before the current)."""
    sync_path = _sync_path(home, path)
    entry = control_request(home.socket_path, "restore", timeout=SLOW, path=sync_path, rev=rev)
    new_rev = entry.get("entry", {}).get("rev")
    source = f"revision {rev}" if rev else "its previous revision"
    click.echo(f"Restored {sync_path} from {source} (now revision {new_rev})")


@main.command()
@json_option
@click.pass_obj
def conflicts(home: ClientHome, as_json: bool) -> None:
    """List conflicted copies (`name (conflicted copy from DEVICE DATE).ext`)."""
    paths = control_request(home.socket_path, "conflicts", timeout=SLOW)["paths"]
    if as_json:
        _echo_json(paths)
    elif paths:
        click.echo("\n".join(paths))
    else:
        click.echo("No conflicted copies.", err=True)


@main.group(invoke_without_command=True)
@json_option
@click.pass_context
def devices(ctx: click.Context, as_json: bool) -> None:
    """List this user's devices; `syncd devices revoke ID` logs one out."""
    if ctx.invoked_subcommand is not None:
        return
    home: ClientHome = ctx.obj
    found = control_request(home.socket_path, "devices", timeout=SLOW)["devices"]
    if as_json:
        _echo_json(found)
        return
    now = time.time()
    for d in found:
        if d.get("revoked"):
            state = f"revoked {clock(d['revoked'], now)}"
        else:
            state = "this device" if d.get("current") else "active"
        created = clock(d["created"], now) if d.get("created") else "-"
        click.echo(f"{d.get('id')!s:>5}  {d.get('name')!s:<24} {created:>19}  {state}")


@devices.command()
@click.argument("device_id", metavar="ID", type=int)
@click.option("--force", is_flag=True, help="Allow revoking this very device.")
@click.pass_obj
def revoke(home: ClientHome, device_id: int, force: bool) -> None:
    """Revoke device ID's token: it can no longer sync until linked again."""
    found = control_request(home.socket_path, "devices", timeout=SLOW)["devices"]
    if any(d.get("id") == device_id and d.get("current") for d in found) and not force:
        raise FatalError(
            f"device {device_id} is this device; revoking it logs it out (add --force)"
        )
    control_request(home.socket_path, "revoke", timeout=SLOW, id=device_id)
    click.echo(f"Revoked device {device_id}")


@main.command()
@json_option
@click.pass_obj
def doctor(home: ClientHome, as_json: bool) -> None:
    """Check this device's setup (server, token, keyring, inotify, disk, permissions)."""
    from dataclasses import asdict

    from syncd.doctor import report, run_checks

    checks = run_checks(home)
    if as_json:
        _echo_json([asdict(c) for c in checks])
    else:
        click.echo(report(checks))
    if any(c.level == "fail" for c in checks):
        sys.exit(1)


# -- the desktop -------------------------------------------------------------------------
def _autostart(home: ClientHome) -> Any:
    from syncd.autostart import Autostart, command_for

    return Autostart(command_for(home.root, default_state_dir()))


@main.group()
def autostart() -> None:
    """Start syncd at login: enable, disable, status."""


@autostart.command("enable")
@click.option("--no-tray", is_flag=True, help="Start only the daemon, not the tray icon.")
@click.pass_obj
def autostart_enable(home: ClientHome, no_tray: bool) -> None:
    """Start the daemon (and the tray icon) whenever you log in."""
    home.load_config()  # not linked: nothing to start
    for line in _autostart(home).enable(tray=not no_tray):
        click.echo(line)


@autostart.command("disable")
@click.pass_obj
def autostart_disable(home: ClientHome) -> None:
    """Stop starting syncd at login (a running daemon keeps running)."""
    done = _autostart(home).disable()
    click.echo("\n".join(done) if done else "autostart was not enabled")


@autostart.command("status")
@json_option
@click.pass_obj
def autostart_status(home: ClientHome, as_json: bool) -> None:
    """Whether the daemon and the tray start at login, and how."""
    from dataclasses import asdict

    found = _autostart(home).status()
    if as_json:
        _echo_json([asdict(e) for e in found])
        return
    for e in found:
        if not e.installed:
            click.echo(f"{e.what}: not started at login (syncd autostart enable)")
            continue
        how = {
            "systemd": "systemd user unit",
            "xdg": "XDG autostart entry",
            "launchd": "LaunchAgent",
            "startup": "Startup-folder entry",
        }[e.kind]
        extra = f", {e.detail}" if e.detail else ""
        stale = "" if e.current else " (outdated: run syncd autostart enable)"
        click.echo(f"{e.what}: enabled — {how} {e.path}{extra}{stale}")


@main.command()
@click.option("--log-level", type=LOG_LEVELS, default="info", show_default=True)
@click.pass_obj
def tray(home: ClientHome, log_level: str) -> None:
    """Show the tray icon (status, recent changes, pause/resume) until closed."""
    from syncd.daemonize import setup_logging
    from syncd.tray import run_tray  # pystray and Pillow load only here

    home.ensure()
    setup_logging(home.root / "tray.log", log_level.lower(), to_stderr=sys.stderr.isatty())
    run_tray(home)


def run() -> None:
    try:
        main()
    except SyncdError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
