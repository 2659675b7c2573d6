"""The `syncd` command line (click). Server commands live under `syncd server`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from syncd import __version__
from syncd.errors import SyncdError


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.UsageError("the password must not be empty")
    return password


@click.group()
@click.version_option(__version__, prog_name="syncd")
def main() -> None:
    """syncd: keep a folder identical on all your devices."""


@main.group(invoke_without_command=True)
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Server data directory (metadata and chunks). Default: the user data dir.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8484, show_default=True, type=int, help="Port to listen on.")
@click.option("--meta", "meta_url", default=None, help="Metadata store URL (sqlite:///PATH).")
@click.option("--blocks", "blocks_url", default=None, help="Chunk store URL (file:///DIR).")
@click.option("--notify", "notify_url", default="memory://", help="Notifier URL (memory://).")
@click.option("--log-level", default="info", show_default=True)
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
) -> None:
    """Run the sync server in the foreground (embedded: SQLite + local disk)."""
    if ctx.invoked_subcommand is not None:
        return
    from syncd.server.config import ServerConfig, default_data_dir
    from syncd.server.main import serve

    config = ServerConfig(
        data=data or default_data_dir(),
        meta_url=meta_url,
        blocks_url=blocks_url,
        notify_url=notify_url,
    )
    click.echo(f"syncd server: data in {config.data}, listening on http://{host}:{port}", err=True)
    serve(config, host, port, log_level)


@server.command("adduser")
@click.argument("name")
@click.option("--email", default=None, help="The user's e-mail address.")
@click.option(
    "--data",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Server data directory.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def adduser(name: str, email: str | None, data: Path, password_stdin: bool) -> None:
    """Create a user (with their own namespace) on the server's data."""
    from syncd.server.config import ServerConfig
    from syncd.server.main import add_user

    if not name.strip() or len(name) > 128 or any(ord(c) < 32 for c in name):
        raise click.UsageError("a user name is 1-128 printable characters")
    password = _read_password(password_stdin)
    try:
        user = add_user(ServerConfig(data=data), name, email, password)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created user {user.name!r} (namespace {user.namespace})")


def run() -> None:
    try:
        main()
    except SyncdError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
