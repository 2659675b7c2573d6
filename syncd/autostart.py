"""Start at login (`syncd autostart enable|disable|status`): the files, for every OS.

- Linux with a systemd user manager: `~/.config/systemd/user/syncd.service` runs
  `syncd start --foreground` and restarts it on failure (then `systemctl --user
  daemon-reload` and `enable`); without one, an XDG autostart entry
  `~/.config/autostart/syncd.desktop` runs `syncd start`. The tray always gets its own
  XDG entry, `syncd-tray.desktop` (it belongs to the graphical session).
- macOS: LaunchAgents `org.syncd.daemon.plist` (KeepAlive on failure) and
  `org.syncd.tray.plist` in ~/Library/LaunchAgents.
- Windows: `syncd.cmd` and `syncd-tray.cmd` in the Startup folder.

The contents are pure functions of the command to run (`Command`), tested for every OS;
`plan(...)` says which files go where, and `enable`/`disable`/`status` act on them.
A state directory other than the default gets its own names (`syncd-<hash>...`), so
several devices on one machine each start their own daemon.
"""

from __future__ import annotations

import hashlib
import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

LABEL = "org.syncd"


@dataclass(frozen=True)
class Command:
    """How to run syncd for one state directory."""

    python: str  # the interpreter that has syncd installed
    home: str  # the state directory (always passed, so the entry never guesses)
    suffix: str = ""  # "" for the default home, "-<hash>" for any other

    def argv(self, *args: str) -> list[str]:
        return [self.python, "-m", "syncd", "--home", self.home, *args]


def command_for(home: Path, default_home: Path, python: str = sys.executable) -> Command:
    same = Path(home).absolute() == Path(default_home).absolute()
    suffix = "" if same else "-" + hashlib.sha256(str(home).encode()).hexdigest()[:8]
    return Command(python=python, home=str(home), suffix=suffix)


# -- file contents (pure) ------------------------------------------------------------------
def _systemd_quote(arg: str) -> str:
    if arg and all(c.isalnum() or c in "/._-+:@=," for c in arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def systemd_unit(cmd: Command) -> str:
    exec_start = " ".join(_systemd_quote(a) for a in cmd.argv("start", "--foreground"))
    return (
        "[Unit]\n"
        "Description=syncd file sync daemon\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStart={exec_start}\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def _desktop_exec(argv: list[str]) -> str:
    """The Exec key's quoting (Desktop Entry spec): quote arguments with reserved chars."""
    out = []
    for arg in argv:
        if arg and not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`%"):
            out.append(arg)
        else:
            escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`")
            out.append('"' + escaped.replace("$", "\\$").replace("%", "%%") + '"')
    return " ".join(out)


def desktop_entry(name: str, comment: str, argv: list[str]) -> str:
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        f"Name={name}\n"
        f"Comment={comment}\n"
        f"Exec={_desktop_exec(argv)}\n"
        "Terminal=false\n"
        "X-GNOME-Autostart-enabled=true\n"
        "X-GNOME-Autostart-Delay=2\n"
    )


def daemon_desktop_entry(cmd: Command) -> str:
    return desktop_entry("syncd", "Keep your folder in sync", cmd.argv("start"))


def tray_desktop_entry(cmd: Command) -> str:
    return desktop_entry("syncd tray", "syncd's status icon", cmd.argv("tray"))


def launch_agent(cmd: Command, *, tray: bool = False) -> bytes:
    label = f"{LABEL}.{'tray' if tray else 'daemon'}{cmd.suffix}"
    plist: dict = {
        "Label": label,
        "ProgramArguments": cmd.argv("tray") if tray else cmd.argv("start", "--foreground"),
        "RunAtLoad": True,
        "ProcessType": "Interactive" if tray else "Background",
        "StandardErrorPath": str(Path(cmd.home) / ("tray.err" if tray else "launchd.err")),
    }
    if not tray:
        plist["KeepAlive"] = {"SuccessfulExit": False}  # restart on failure only
    return plistlib.dumps(plist, sort_keys=True)


def windows_cmd(cmd: Command, *, tray: bool = False) -> str:
    """A Startup-folder batch file: starts syncd without a console window (pythonw)."""
    python = cmd.python
    if python.lower().endswith("python.exe"):
        python = python[: -len("python.exe")] + "pythonw.exe"
    args = cmd.argv("tray") if tray else cmd.argv("start")
    args[0] = python
    line = subprocess.list2cmdline(args)
    return f'@echo off\r\nrem syncd: started at login\r\nstart "" {line}\r\n'


# -- where files go --------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    what: str  # "daemon" | "tray"
    kind: str  # "systemd" | "xdg" | "launchd" | "startup"
    path: Path
    content: bytes


def config_home(env: Mapping[str, str]) -> Path:
    return Path(env.get("XDG_CONFIG_HOME") or Path(env.get("HOME", "~"), ".config")).expanduser()


def plan(cmd: Command, platform: str, env: Mapping[str, str], systemd: bool) -> list[Entry]:
    """The files that start the daemon and the tray at login on `platform`."""
    s = cmd.suffix
    if platform == "darwin":
        agents = Path(env.get("HOME", "~"), "Library", "LaunchAgents").expanduser()
        return [
            Entry("daemon", "launchd", agents / f"{LABEL}.daemon{s}.plist", launch_agent(cmd)),
            Entry(
                "tray", "launchd", agents / f"{LABEL}.tray{s}.plist", launch_agent(cmd, tray=True)
            ),
        ]
    if platform == "win32":
        appdata = Path(env.get("APPDATA") or Path(env.get("HOME", "~"), "AppData", "Roaming"))
        startup = appdata / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Startup"
        return [
            Entry("daemon", "startup", startup / f"syncd{s}.cmd", windows_cmd(cmd).encode()),
            Entry(
                "tray",
                "startup",
                startup / f"syncd-tray{s}.cmd",
                windows_cmd(cmd, tray=True).encode(),
            ),
        ]
    conf = config_home(env)
    tray = Entry(
        "tray",
        "xdg",
        conf / "autostart" / f"syncd-tray{s}.desktop",
        tray_desktop_entry(cmd).encode(),
    )
    if systemd:
        unit = conf / "systemd" / "user" / f"syncd{s}.service"
        return [Entry("daemon", "systemd", unit, systemd_unit(cmd).encode()), tray]
    daemon = conf / "autostart" / f"syncd{s}.desktop"
    return [Entry("daemon", "xdg", daemon, daemon_desktop_entry(cmd).encode()), tray]


# -- acting on them (the edge) -------------------------------------------------------------
Runner = Callable[[list[str]], subprocess.CompletedProcess]


def run_quiet(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def systemd_user_available(run: Runner = run_quiet) -> bool:
    """True if a systemd user manager answers (`systemctl --user` works here)."""
    if not sys.platform.startswith("linux") or shutil.which("systemctl") is None:
        return False
    try:
        return run(["systemctl", "--user", "show-environment"]).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _service_commands(entry: Entry, enable: bool) -> list[list[str]]:
    unit = entry.path.name
    if entry.kind == "systemd":
        if enable:
            return [
                ["systemctl", "--user", "daemon-reload"],
                ["systemctl", "--user", "enable", unit],
            ]
        return [["systemctl", "--user", "disable", unit], ["systemctl", "--user", "daemon-reload"]]
    if entry.kind == "launchd":
        domain = f"gui/{os.getuid()}" if hasattr(os, "getuid") else "gui"
        if enable:
            return [["launchctl", "bootstrap", domain, str(entry.path)]]
        return [["launchctl", "bootout", domain, str(entry.path)]]
    return []


@dataclass(frozen=True)
class EntryStatus:
    what: str  # "daemon" | "tray"
    kind: str
    path: str
    installed: bool
    current: bool  # the file holds what this syncd would write now
    detail: str = ""  # systemd's is-enabled answer


class Autostart:
    """enable / disable / status for one state directory on this machine."""

    def __init__(
        self,
        cmd: Command,
        *,
        platform: str = sys.platform,
        env: Mapping[str, str] | None = None,
        systemd: bool | None = None,
        run: Runner = run_quiet,
    ) -> None:
        self.cmd = cmd
        self.platform = "linux" if platform.startswith("linux") else platform
        self.env = os.environ if env is None else env
        self.run = run
        self.systemd = systemd_user_available(run) if systemd is None else systemd

    def entries(self, *, tray: bool = True) -> list[Entry]:
        found = plan(self.cmd, self.platform, self.env, self.systemd)
        return [e for e in found if tray or e.what != "tray"]

    def _everything(self) -> list[Entry]:
        """Every file syncd may have written here (on Linux: systemd and XDG kinds)."""
        by_path = {
            e.path: e
            for flag in (self.systemd, not self.systemd)
            for e in plan(self.cmd, self.platform, self.env, flag)
        }
        return list(by_path.values())

    def enable(self, *, tray: bool = True) -> list[str]:
        """Write the entries (removing one of the other kind); returns what was done."""
        wanted = self.entries(tray=tray)
        paths = {e.path for e in wanted}
        done = self._remove([e for e in self._everything() if e.path not in paths])
        for entry in wanted:
            entry.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = entry.path.with_name(f".{entry.path.name}.tmp")
            tmp.write_bytes(entry.content)
            os.replace(tmp, entry.path)
            done.append(f"wrote {entry.path}")
            for argv in _service_commands(entry, enable=True):
                done.append(self._run(argv))
        return done

    def disable(self) -> list[str]:
        return self._remove(self._everything())

    def _remove(self, entries: list[Entry]) -> list[str]:
        done = []
        for entry in entries:
            if not entry.path.exists():
                continue
            if (entry.kind == "systemd" and self.systemd) or entry.kind == "launchd":
                done += [self._run(argv) for argv in _service_commands(entry, enable=False)]
            entry.path.unlink()
            done.append(f"removed {entry.path}")
        return done

    def _run(self, argv: list[str]) -> str:
        try:
            out = self.run(argv)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"could not run {shlex.join(argv)}: {exc}"
        if out.returncode != 0:
            return f"ran {shlex.join(argv)} (failed: {(out.stderr or out.stdout).strip()})"
        return f"ran {shlex.join(argv)}"

    def status(self) -> list[EntryStatus]:
        """One line per thing started at login: the entry found, else the one enable
        would write."""
        out = []
        for what in ("daemon", "tray"):
            candidates = [e for e in self._everything() if e.what == what]
            found = [e for e in candidates if e.path.is_file()]
            if not found:
                planned = next(e for e in self.entries() if e.what == what)
                out.append(EntryStatus(what, planned.kind, str(planned.path), False, False))
                continue
            for entry in found:
                detail = ""
                if entry.kind == "systemd" and self.systemd:
                    detail = self.run(
                        ["systemctl", "--user", "is-enabled", entry.path.name]
                    ).stdout.strip()
                current = entry.path.read_bytes() == entry.content
                out.append(EntryStatus(what, entry.kind, str(entry.path), True, current, detail))
        return out
