"""Backoff and retry policy, with injected sleep and randomness."""

from __future__ import annotations

import pytest

from syncd.errors import AuthError, Offline, ServerBusy
from syncd.transport.retry import Backoff, with_retries


def test_backoff_grows_exponentially_up_to_the_cap_with_jitter():
    b = Backoff(base=0.5, cap=4.0, rand=lambda: 1.0)
    assert [b.delay(i) for i in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    half = Backoff(base=0.5, cap=4.0, rand=lambda: 0.5)
    assert half.delay(2) == 1.0
    assert b.delay(0, retry_after=7) == 7


def test_retries_retryable_errors_then_succeeds():
    calls, slept = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise Offline("down")
        return "ok"

    assert (
        with_retries(flaky, attempts=5, backoff=Backoff(rand=lambda: 1.0), sleep=slept.append)
        == "ok"
    )
    assert slept == [0.2, 0.4]


def test_retry_after_is_honoured_and_auth_errors_are_not_retried():
    slept = []

    def busy():
        raise ServerBusy("moving", retry_after=3)

    with pytest.raises(ServerBusy):
        with_retries(busy, attempts=2, backoff=Backoff(rand=lambda: 0.0), sleep=slept.append)
    assert slept == [3]

    def denied():
        raise AuthError("revoked")

    with pytest.raises(AuthError):
        with_retries(denied, attempts=5, sleep=slept.append)
    assert slept == [3]
