"""Brute-force guards: failed logins and bad tokens are counted, and refused with 429.

Only failures count, so a household with many devices never trips it. A client that is
over a limit is refused before its password is checked (a correct guess during a
lockout still fails), with `Retry-After` saying when the window frees up. Counters live
in the `limits` library's storage: in process by default, or a shared one (for example
Redis) when several server processes stand behind a load balancer.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from syncd.server.errors import ApiError


@dataclass(frozen=True)
class Limits:
    login_per_user: str = "10/minute"  # failed logins for one user name from one address
    login_per_address: str = "30/minute"  # failed logins from one address, any user name
    token_per_address: str = "60/minute"  # requests with an unknown or revoked token
    storage_url: str = "memory://"


class Guard:
    def __init__(self, limits: Limits) -> None:
        url = limits.storage_url
        self._limiter = MovingWindowRateLimiter(
            storage_from_string(url if url.startswith("async+") else f"async+{url}")
        )
        self._login_user = parse(limits.login_per_user)
        self._login_addr = parse(limits.login_per_address)
        self._token_addr = parse(limits.token_per_address)

    async def check_login(self, address: str, user: str) -> None:
        """Refuse (429) a login attempt from an address or for a user name that failed too
        often; call before checking the password."""
        await self._refuse_if_over(self._login_addr, "login", address)
        await self._refuse_if_over(self._login_user, "login", address, user)

    async def login_failed(self, address: str, user: str) -> None:
        await self._limiter.hit(self._login_addr, "login", address)
        await self._limiter.hit(self._login_user, "login", address, user)

    async def check_token(self, address: str) -> None:
        await self._refuse_if_over(self._token_addr, "token", address)

    async def token_failed(self, address: str) -> None:
        await self._limiter.hit(self._token_addr, "token", address)

    async def _refuse_if_over(self, item: RateLimitItem, *key: str) -> None:
        if await self._limiter.test(item, *key):
            return
        stats = await self._limiter.get_window_stats(item, *key)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        raise ApiError(
            429,
            "too_many_attempts",
            f"too many failed attempts; try again in {wait} s",
            headers={"Retry-After": str(wait)},
            retry_after=wait,
        )
