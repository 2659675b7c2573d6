"""The device token: in the OS keyring, or a 0600 file where no keyring works (D10).

The keyring entry is service "syncd", username "USER@SERVER [HOME]", so two state
directories on one machine (two devices, or two accounts) never share a token. A
headless box has no working keyring (keyring's fail backend, a locked or absent
Secret Service); there the token goes to `token` in the state directory, mode 0600,
and `save_token` returns that path so the caller can tell the user.
"""

from __future__ import annotations

import logging
import os
import stat

import keyring
from keyring.errors import NoKeyringError

from syncd.errors import FatalError
from syncd.home import ClientConfig, ClientHome, write_private

SERVICE = "syncd"
KEYRING = "keyring"
RELINK = "link this device again: syncd link URL --user NAME --folder PATH"

log = logging.getLogger("syncd.credentials")


def keyring_username(home: ClientHome, cfg: ClientConfig) -> str:
    return f"{cfg.user}@{cfg.server_url} [{home.root}]"


def save_token(home: ClientHome, cfg: ClientConfig, token: str) -> str:
    """Store `token`; return "keyring" or the path of the fallback file."""
    name = keyring_username(home, cfg)
    try:
        keyring.set_password(SERVICE, name, token)
        if keyring.get_password(SERVICE, name) == token:
            home.token_path.unlink(missing_ok=True)
            return KEYRING
        reason = "the keyring did not keep the token"
    except Exception as exc:  # any backend failure (no backend, D-Bus, locked): fall back
        reason = f"{type(exc).__name__}: {exc}"
    log.info("no working OS keyring (%s); storing the token in %s", reason, home.token_path)
    home.ensure()
    write_private(home.token_path, token + "\n")
    return str(home.token_path)


def load_token(home: ClientHome, cfg: ClientConfig) -> str:
    """The token from the fallback file if there is one, else from the keyring."""
    path = home.token_path
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        fd = -1
    except OSError as exc:
        raise FatalError(f"cannot read the device token in {path}: {exc.strerror}") from None
    if fd >= 0:
        with os.fdopen(fd, encoding="utf-8") as fh:
            if stat.S_IMODE(os.fstat(fh.fileno()).st_mode) & 0o077:
                raise FatalError(f"{path} is readable by other users; run: chmod 600 {path}")
            token = fh.read().strip()
        if not token:
            raise FatalError(f"the token file {path} is empty; {RELINK}")
        return token
    try:
        token = keyring.get_password(SERVICE, keyring_username(home, cfg))
    except NoKeyringError:
        raise FatalError(f"no device token (no token file, no OS keyring); {RELINK}") from None
    except Exception as exc:
        raise FatalError(f"cannot read the device token from the OS keyring: {exc}") from None
    if not token:
        raise FatalError(f"no device token found for {cfg.user} on {cfg.server_url}; {RELINK}")
    return token


def delete_token(home: ClientHome, cfg: ClientConfig) -> None:
    """Forget the token wherever it is; missing entries and keyring errors are ignored."""
    home.token_path.unlink(missing_ok=True)
    try:
        keyring.delete_password(SERVICE, keyring_username(home, cfg))
    except Exception as exc:  # not there, or no keyring: nothing to delete
        log.debug("keyring delete: %s", exc)
