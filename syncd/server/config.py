"""Server configuration: where data lives, which backends (by URL), and request bounds."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from syncd.server.ratelimit import Limits

MiB = 1 << 20


def default_data_dir() -> Path:
    return platformdirs.user_data_path("syncd") / "server"


@dataclass(frozen=True)
class ServerConfig:
    data: Path
    meta_url: str | None = None  # default: sqlite:///<data>/meta.sqlite3
    blocks_url: str | None = None  # default: file:///<data>/blocks
    notify_url: str = "memory://"
    max_batch_bytes: int = 64 * MiB  # a batch upload/download body
    max_json_bytes: int = 64 * MiB  # a JSON request body (large commits)
    longpoll_max: float = 300.0  # the longest a change-feed request may wait
    chunking: tuple[int, int, int] | None = None  # (min, avg, max) for new namespaces
    quota_bytes: int | None = None  # per-user storage quota; None: unlimited
    limits: Limits = field(default_factory=Limits)  # failed login / bad token rate limits
    chunk_redirect_ttl: float | None = None  # answer chunk GETs with a signed URL (S3 only)

    def resolved_meta_url(self) -> str:
        return self.meta_url or f"sqlite:///{(self.data / 'meta.sqlite3').resolve()}"

    def resolved_blocks_url(self) -> str:
        return self.blocks_url or (self.data / "blocks").resolve().as_uri()

    def resolved_chunking(self) -> tuple[int, int, int]:
        """Chunk parameters for new namespaces: the config, $SYNCD_CHUNKING, or the default."""
        if self.chunking is not None:
            return self.chunking
        env = os.environ.get("SYNCD_CHUNKING")
        if env:
            return parse_chunking(env)
        from syncd.chunker import DEFAULT_PARAMS

        return (DEFAULT_PARAMS.min_size, DEFAULT_PARAMS.avg_size, DEFAULT_PARAMS.max_size)


def parse_chunking(text: str) -> tuple[int, int, int]:
    """'MIN,AVG,MAX' in bytes, as FastCDC accepts them."""
    try:
        lo, avg, hi = (int(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"chunking {text!r}: expected MIN,AVG,MAX in bytes") from None
    if not (64 <= lo <= avg <= hi <= 16 * MiB):
        raise ValueError(f"chunking {text!r}: need 64 <= MIN <= AVG <= MAX <= 16 MiB")
    return (lo, avg, hi)
