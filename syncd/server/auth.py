"""Passwords (Argon2) and device tokens (random, stored as SHA-256) (D10)."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
TOKEN_PREFIX = "sdt_"
# Verifying against this makes an unknown user cost as much time as a known one.
_DUMMY_HASH = _hasher.hash("syncd-dummy-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """A device token: 256 random bits, shown once to the device, never stored in clear."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    # Tokens carry 256 bits of entropy, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
