"""Start at login: the files for every OS (pure), and enable/disable/status for real on
Linux in a temp HOME (XDG autostart here: no systemd user manager in the test box)."""

from __future__ import annotations

import configparser
import plistlib
import shlex
import subprocess
from pathlib import Path

import pytest

from syncd.autostart import Autostart, Command, command_for, plan, systemd_unit
from syncd.home import ClientConfig, ClientHome
from tests.support.devices import syncd

CMD = Command(python="/opt/venv/bin/python", home="/home/ann/.local/state/syncd")
ODD = Command(python="/opt/my venv/bin/python", home="/home/ann/state 100%", suffix="-1a2b3c4d")
ENV = {
    "HOME": "/home/ann",
    "XDG_CONFIG_HOME": "/home/ann/.config",
    "APPDATA": r"C:\Users\ann\AppData\Roaming",
}


def ini(text: bytes | str, section: str) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(text.decode() if isinstance(text, bytes) else text)
    return dict(parser[section])


def test_linux_with_systemd_a_user_unit_and_an_xdg_entry_for_the_tray():
    daemon, tray = plan(CMD, "linux", ENV, systemd=True)
    assert daemon.path == Path("/home/ann/.config/systemd/user/syncd.service")
    service = ini(daemon.content, "Service")
    assert service["ExecStart"] == (
        "/opt/venv/bin/python -m syncd --home /home/ann/.local/state/syncd start --foreground"
    )
    assert service["Restart"] == "on-failure" and service["Type"] == "simple"
    assert ini(daemon.content, "Install")["WantedBy"] == "default.target"
    assert tray.path == Path("/home/ann/.config/autostart/syncd-tray.desktop")
    entry = ini(tray.content, "Desktop Entry")
    assert entry["Type"] == "Application" and entry["Terminal"] == "false"
    assert shlex.split(entry["Exec"])[-3:] == ["--home", CMD.home, "tray"]


def test_linux_without_systemd_xdg_entries_for_both():
    daemon, tray = plan(CMD, "linux", ENV, systemd=False)
    assert daemon.path == Path("/home/ann/.config/autostart/syncd.desktop")
    assert shlex.split(ini(daemon.content, "Desktop Entry")["Exec"]) == CMD.argv("start")
    assert tray.kind == "xdg"
    # XDG_CONFIG_HOME unset: ~/.config
    assert plan(CMD, "linux", {"HOME": "/h"}, False)[0].path == Path(
        "/h/.config/autostart/syncd.desktop"
    )


def test_odd_paths_are_quoted_and_another_home_gets_its_own_names():
    unit = systemd_unit(ODD)
    assert (
        'ExecStart="/opt/my venv/bin/python" -m syncd --home "/home/ann/state 100%%" start' in unit
    )
    daemon, tray = plan(ODD, "linux", ENV, systemd=False)
    assert daemon.path.name == "syncd-1a2b3c4d.desktop"
    assert tray.path.name == "syncd-tray-1a2b3c4d.desktop"
    exec_line = ini(daemon.content, "Desktop Entry")["Exec"]
    assert exec_line.startswith('"/opt/my venv/bin/python" -m syncd --home "/home/ann/state 100%%"')
    a = command_for(Path("/x/home"), Path("/x/home"))
    b = command_for(Path("/y/home"), Path("/x/home"))
    assert a.suffix == "" and b.suffix.startswith("-") and len(b.suffix) == 9


def test_macos_launch_agents():
    daemon, tray = plan(CMD, "darwin", ENV, systemd=False)
    assert daemon.path == Path("/home/ann/Library/LaunchAgents/org.syncd.daemon.plist")
    d = plistlib.loads(daemon.content)
    assert d["Label"] == "org.syncd.daemon" and d["RunAtLoad"] is True
    assert d["ProgramArguments"] == CMD.argv("start", "--foreground")
    assert d["KeepAlive"] == {"SuccessfulExit": False}  # restart on failure only
    t = plistlib.loads(tray.content)
    assert t["Label"] == "org.syncd.tray" and t["ProgramArguments"][-1] == "tray"
    assert "KeepAlive" not in t  # closing the tray means closed


def test_windows_startup_folder_entries():
    win = Command(python=r"C:\Program Files\syncd\python.exe", home=r"C:\Users\ann\syncd")
    daemon, tray = plan(win, "win32", ENV, systemd=False)
    startup = r"C:\Users\ann\AppData\Roaming/Microsoft/Windows/Start Menu/Programs/Startup"
    assert str(daemon.path.parent) == str(Path(startup))
    assert (daemon.path.name, tray.path.name) == ("syncd.cmd", "syncd-tray.cmd")
    text = daemon.content.decode()
    assert text.startswith("@echo off\r\n") and text.endswith("\r\n")
    assert (
        r'start "" "C:\Program Files\syncd\pythonw.exe" -m syncd --home C:\Users\ann\syncd start'
        in text
    )
    assert tray.content.decode().rstrip().endswith(" tray")


def test_enable_status_disable_round_trip_on_linux(tmp_path):
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "conf")}
    auto = Autostart(CMD, platform="linux", env=env, systemd=False)
    assert [s.installed for s in auto.status()] == [False, False]
    done = auto.enable()
    assert done == [
        f"wrote {tmp_path}/conf/autostart/syncd.desktop",
        f"wrote {tmp_path}/conf/autostart/syncd-tray.desktop",
    ]
    status = auto.status()
    assert [(s.what, s.kind, s.installed, s.current) for s in status] == [
        ("daemon", "xdg", True, True),
        ("tray", "xdg", True, True),
    ]
    (tmp_path / "conf/autostart/syncd.desktop").write_text("[Desktop Entry]\nExec=old\n")
    assert not auto.status()[0].current  # an outdated entry is reported
    assert len(auto.disable()) == 2
    assert not any((tmp_path / "conf/autostart").iterdir())
    assert auto.disable() == []
    auto.enable(tray=False)
    assert [s.installed for s in auto.status()] == [True, False]


def test_with_a_systemd_user_manager_the_unit_is_enabled_through_systemctl(tmp_path):
    """systemctl itself is not here (no user manager in the test box): record what would
    be run, and check the unit replaces an XDG entry written before."""
    ran: list[list[str]] = []

    def run(argv):
        ran.append(argv)
        return subprocess.CompletedProcess(argv, 0, "enabled\n", "")

    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "conf")}
    Autostart(CMD, platform="linux", env=env, systemd=False).enable()
    auto = Autostart(CMD, platform="linux", env=env, systemd=True, run=run)
    done = auto.enable()
    assert f"removed {tmp_path}/conf/autostart/syncd.desktop" in done
    assert (tmp_path / "conf/systemd/user/syncd.service").is_file()
    assert ran == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "syncd.service"],
    ]
    assert auto.status()[0].detail == "enabled"
    ran.clear()
    auto.disable()
    assert ran[0] == ["systemctl", "--user", "disable", "syncd.service"]
    assert not (tmp_path / "conf/systemd/user/syncd.service").exists()


@pytest.fixture
def linked(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "conf"))
    home = ClientHome(tmp_path / "state")
    home.save_config(ClientConfig("http://127.0.0.1:1", "ann", "dev", 1, 1, str(tmp_path), {}))
    return home


def test_the_cli_round_trip(linked, tmp_path):
    out = syncd("autostart", "enable", home=linked.root).stdout
    assert out.count("wrote ") == 2
    status = syncd("autostart", "status", home=linked.root).stdout
    assert "daemon: enabled — XDG autostart entry" in status and "tray: enabled" in status
    entry = next((tmp_path / "conf/autostart").glob("syncd-*.desktop"))
    assert str(linked.root) in entry.read_text()
    assert "removed" in syncd("autostart", "disable", home=linked.root).stdout
    assert "not started at login" in syncd("autostart", "status", home=linked.root).stdout


def test_link_enables_autostart_only_when_asked(server, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "conf"))
    server.adduser("autolinker")
    base = [
        "link",
        server.url,
        "--user",
        "autolinker",
        "--folder",
        str(tmp_path / "Sync"),
        "--password-stdin",
    ]
    out = syncd(*base, home=tmp_path / "a", stdin="correct horse\n").stdout
    assert "syncd autostart enable" in out  # scripts are told how, not asked
    assert not (tmp_path / "conf/autostart").exists()
    out = syncd(*base, "--autostart", home=tmp_path / "b", stdin="correct horse\n").stdout
    assert "autostart: wrote" in out
    assert len(list((tmp_path / "conf/autostart").glob("*.desktop"))) == 2
    out = syncd(*base, "--no-autostart", home=tmp_path / "c", stdin="correct horse\n").stdout
    assert "autostart:" not in out and "syncd autostart enable" not in out
