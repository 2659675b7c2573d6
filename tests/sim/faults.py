"""Faults both simulation drivers inject the same way (the same random draws, in order)."""

from __future__ import annotations

import random

from tests.support.faultproxy import FaultProxy
from tests.support.server import ServerProc


def arm_cut(rng: random.Random, proxy: FaultProxy) -> tuple[str, str]:
    """The next 1-3 connections reset or truncated mid-body; (stats key, trace note)."""
    mode = rng.choice(["reset", "truncate"])
    direction = rng.choice(["up", "down"])
    after, count = rng.randrange(0, 30_000), rng.randrange(1, 4)
    proxy.set(mode, after=after, direction=direction, count=count)
    return f"fault_{mode}_armed", f"network: {mode} {direction} after {after} B, {count}x"


def restart_server(rng: random.Random, server: ServerProc) -> tuple[str, str]:
    """A clean restart or a kill -9 and start; (stats key, trace note)."""
    if rng.random() < 0.5:
        server.restart()
        return "server_restart", "server restart"
    server.kill()
    server.start()
    return "server_kill9", "server kill -9 and start"
