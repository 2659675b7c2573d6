"""Per-user storage quota: the bytes of the distinct chunks a namespace holds.

Every version of every file counts (nothing is ever dropped from history), a chunk
counts once per namespace however many files share it, and chunks already in the
namespace cost nothing to upload again. The server keeps each namespace's usage in
memory once read, adds what it stores, and re-reads it every `ttl` seconds, so the
check costs no query on the upload path and processes behind a load balancer agree
within that time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from syncd.server.errors import ApiError


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def parse_size(text: str) -> int:
    """'10GiB', '500 MB', '1048576' → bytes (binary and decimal units, case-insensitive)."""
    units = {
        "": 1, "b": 1,
        "k": 1000, "kb": 1000, "kib": 1 << 10,
        "m": 1000**2, "mb": 1000**2, "mib": 1 << 20,
        "g": 1000**3, "gb": 1000**3, "gib": 1 << 30,
        "t": 1000**4, "tb": 1000**4, "tib": 1 << 40,
    }  # fmt: skip
    s = text.strip().lower().replace(" ", "")
    number = s.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = s[len(number) :]
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"size {text!r}: expected a number with an optional unit") from None
    if unit not in units or value < 0:
        raise ValueError(f"size {text!r}: unknown unit {unit!r} (use B, KiB, MiB, GiB, TiB)")
    return int(value * units[unit])


class Quota:
    def __init__(self, limit: int | None, usage: Callable[[int], int], ttl: float = 30.0) -> None:
        self.limit = limit
        self._usage = usage  # blocking: the metastore's stored_bytes(ns)
        self._ttl = ttl
        self._known: dict[int, tuple[int, float]] = {}  # ns -> (bytes, read at)

    def used(self, ns: int) -> int:
        """Blocking (may query the metastore): run off the event loop."""
        known = self._known.get(ns)
        if known is None or time.monotonic() - known[1] > self._ttl:
            known = (self._usage(ns), time.monotonic())
            self._known[ns] = known
        return known[0]

    def check(self, ns: int, new_chunks: Sequence[tuple[str, int]]) -> None:
        """Refuse (507) storing chunks new to the namespace beyond the limit. Blocking."""
        if self.limit is None or not new_chunks:
            return
        used = self.used(ns)
        adding = sum(size for _, size in new_chunks)
        if used + adding > self.limit:
            raise ApiError(
                507,
                "quota_exceeded",
                f"storage quota of {format_bytes(self.limit)} exceeded: "
                f"{format_bytes(used)} used, this upload needs {format_bytes(adding)} more",
                limit=self.limit,
                used=used,
                needed=adding,
            )

    def stored(self, ns: int, new_chunks: Sequence[tuple[str, int]]) -> None:
        known = self._known.get(ns)
        if known is not None:
            self._known[ns] = (known[0] + sum(size for _, size in new_chunks), known[1])
