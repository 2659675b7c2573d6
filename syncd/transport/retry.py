"""Exponential backoff with full jitter; time and randomness are injected for tests."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from syncd.errors import ServerBusy, TransportError

T = TypeVar("T")


@dataclass
class Backoff:
    base: float = 0.2
    cap: float = 30.0
    rand: Callable[[], float] = field(default=random.random)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        ceiling = min(self.cap, self.base * (2**attempt))
        wait = ceiling * self.rand()
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait


def with_retries(
    call: Callable[[], T],
    *,
    attempts: int = 4,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `call`, retrying retryable TransportErrors; the last error propagates."""
    backoff = backoff or Backoff()
    for attempt in range(attempts):
        try:
            return call()
        except TransportError as exc:
            if not exc.retryable or attempt == attempts - 1:
                raise
            retry_after = exc.retry_after if isinstance(exc, ServerBusy) else None
            sleep(backoff.delay(attempt, retry_after))
    raise AssertionError("unreachable")
