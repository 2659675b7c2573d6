"""One error hierarchy for syncd; foreign exceptions are converted at the boundary.

SyncdError                  message for people + CLI exit code
├── InvalidPath             a path that syncd cannot store or accept (D10)
├── FileError               one file could not be handled; sync goes on (recoverable)
├── TransportError          talking to the server failed
│   ├── Offline             no connection / timeout: retry later (retryable)
│   ├── ServerBusy          5xx or 503 + Retry-After (retryable)
│   ├── AuthError           token missing, bad or revoked (not retryable)
│   └── RequestRejected     4xx with the server's message (not retryable)
└── FatalError              the process cannot go on; the message says why
"""

from __future__ import annotations


class SyncdError(Exception):
    """Base class: `str(err)` is a message a person can read."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidPath(SyncdError):
    exit_code = 2

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"invalid path {path!r}: {reason}")
        self.path = path
        self.reason = reason


class FileError(SyncdError):
    """A per-file problem (unreadable, vanished, changing while read): skip and report."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class TransportError(SyncdError):
    retryable = False


class Offline(TransportError):
    retryable = True


class ServerBusy(TransportError):
    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthError(TransportError):
    exit_code = 4


class RequestRejected(TransportError):
    def __init__(self, status: int, code: str, message: str, body: dict | None = None) -> None:
        super().__init__(f"{message} ({status} {code})")
        self.status = status
        self.code = code
        self.body = body or {}


class FatalError(SyncdError):
    exit_code = 1
