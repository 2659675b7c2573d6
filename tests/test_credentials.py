"""Device tokens: the OS keyring when it works, else a 0600 file (and the caller is told)."""

from __future__ import annotations

import stat

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null

from syncd.credentials import KEYRING, SERVICE, delete_token, load_token, save_token
from syncd.errors import FatalError
from syncd.home import ClientConfig, ClientHome


class MemoryKeyring(KeyringBackend):
    """A working keyring backend (keyring's own plugin interface), kept in a dict."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.store.get((service, username))

    def set_password(self, service, username, password):
        self.store[(service, username)] = password

    def delete_password(self, service, username):
        self.store.pop((service, username))


@pytest.fixture
def use_keyring():
    before = keyring.get_keyring()

    def use(backend: KeyringBackend) -> KeyringBackend:
        keyring.set_keyring(backend)
        return backend

    yield use
    keyring.set_keyring(before)


def cfg_for(folder: str = "/sync") -> ClientConfig:
    return ClientConfig("http://127.0.0.1:1", "ann", "dev", 1, 1, folder, {})


@pytest.mark.parametrize("backend", [fail.Keyring, null.Keyring], ids=["fail", "null"])
def test_no_working_keyring_falls_back_to_a_0600_file(tmp_path, use_keyring, backend):
    use_keyring(backend())
    home, cfg = ClientHome(tmp_path / "h"), cfg_for()
    where = save_token(home, cfg, "s3cret-token")
    assert where == str(home.token_path)
    assert stat.S_IMODE(home.token_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.root.stat().st_mode) == 0o700
    assert load_token(home, cfg) == "s3cret-token"
    delete_token(home, cfg)
    assert not home.token_path.exists()
    with pytest.raises(FatalError, match="link this device again"):
        load_token(home, cfg)


def test_a_working_keyring_keeps_the_token_and_homes_do_not_collide(tmp_path, use_keyring):
    ring = use_keyring(MemoryKeyring())
    a, b, cfg = ClientHome(tmp_path / "a"), ClientHome(tmp_path / "b"), cfg_for()
    assert save_token(a, cfg, "token-a") == KEYRING
    assert save_token(b, cfg, "token-b") == KEYRING
    assert not a.token_path.exists() and not b.token_path.exists()
    assert load_token(a, cfg) == "token-a" and load_token(b, cfg) == "token-b"
    assert {s for s, _ in ring.store} == {SERVICE}
    assert all(str(tmp_path) in user for _, user in ring.store)
    delete_token(a, cfg)
    assert load_token(b, cfg) == "token-b"
    with pytest.raises(FatalError):
        load_token(a, cfg)


def test_moving_to_the_keyring_removes_an_old_token_file(tmp_path, use_keyring):
    home, cfg = ClientHome(tmp_path), cfg_for()
    use_keyring(fail.Keyring())
    save_token(home, cfg, "old")
    use_keyring(MemoryKeyring())
    assert save_token(home, cfg, "new") == KEYRING
    assert not home.token_path.exists()
    assert load_token(home, cfg) == "new"


def test_a_token_file_readable_by_others_is_refused(tmp_path, use_keyring):
    use_keyring(fail.Keyring())
    home, cfg = ClientHome(tmp_path), cfg_for()
    save_token(home, cfg, "tok")
    home.token_path.chmod(0o644)
    with pytest.raises(FatalError, match="chmod 600"):
        load_token(home, cfg)
