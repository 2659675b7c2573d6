"""ClientHome: state directory resolution, 0700 creation, config.json round trip."""

from __future__ import annotations

import dataclasses
import json
import stat

import platformdirs
import pytest

from syncd.errors import FatalError
from syncd.home import NOT_LINKED, ClientConfig, ClientHome

CFG = ClientConfig(
    server_url="http://127.0.0.1:8484",
    user="ann",
    device="laptop",
    device_id=7,
    namespace=3,
    folder="/home/ann/Sync",
    chunking={"min": 1024, "avg": 4096, "max": 16384},
)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_resolve_prefers_argument_then_env_then_platform(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNCD_HOME", str(tmp_path / "env"))
    assert ClientHome.resolve(tmp_path / "arg").root == tmp_path / "arg"
    assert ClientHome.resolve().root == tmp_path / "env"
    monkeypatch.delenv("SYNCD_HOME")
    assert ClientHome.resolve().root == platformdirs.user_state_path("syncd").absolute()


def test_file_names(tmp_path):
    home = ClientHome(tmp_path)
    assert home.config_path == tmp_path / "config.json"
    assert home.pid_path == tmp_path / "daemon.pid"
    assert home.log_path == tmp_path / "daemon.log"
    assert home.socket_path == tmp_path / "control.sock"
    assert home.index_path == tmp_path / "index.sqlite3"
    assert home.token_path == tmp_path / "token"


def test_ensure_creates_a_private_directory(tmp_path):
    home = ClientHome(tmp_path / "a" / "b").ensure()
    assert home.root.is_dir() and mode(home.root) == 0o700
    assert home.ensure() is home  # idempotent


def test_missing_config_says_how_to_link(tmp_path):
    home = ClientHome(tmp_path)
    assert not home.is_linked()
    with pytest.raises(FatalError) as err:
        home.load_config()
    assert str(err.value) == NOT_LINKED
    assert "syncd link URL --user NAME --folder PATH" in NOT_LINKED


def test_config_round_trip_is_private_and_frozen(tmp_path):
    home = ClientHome(tmp_path / "h")
    home.save_config(CFG)
    assert home.is_linked()
    assert mode(home.root) == 0o700 and mode(home.config_path) == 0o600
    assert home.load_config() == CFG
    assert json.loads(home.config_path.read_text())["folder"] == "/home/ann/Sync"
    assert [p.name for p in home.root.iterdir()] == ["config.json"]  # no temp files left
    with pytest.raises(dataclasses.FrozenInstanceError):
        CFG.user = "bob"  # type: ignore[misc]


@pytest.mark.parametrize(
    "change",
    [
        {"folder": "relative/dir"},
        {"device_id": "7"},
        {"namespace": True},
        {"user": ""},
        {"chunking": {"min": "x"}},
    ],
)
def test_bad_config_fields_are_rejected(change):
    with pytest.raises(ValueError):
        ClientConfig.from_dict({**CFG.to_dict(), **change})


def test_damaged_config_is_a_fatal_error_naming_the_file(tmp_path):
    home = ClientHome(tmp_path)
    home.config_path.write_text("{not json")
    with pytest.raises(FatalError, match="damaged"):
        home.load_config()
    home.config_path.write_text('{"user": "ann"}')
    with pytest.raises(FatalError, match="server_url"):
        home.load_config()
