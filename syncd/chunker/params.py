"""Chunk parameters: a property of the namespace, handed to every device (D1)."""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB
MAX_CHUNK_SIZE_LIMIT = 16 * MiB  # the largest `max` a namespace may use


@dataclass(frozen=True)
class ChunkParams:
    min_size: int
    avg_size: int
    max_size: int

    def __post_init__(self) -> None:
        if not (64 <= self.min_size <= self.avg_size <= self.max_size):
            raise ValueError(
                f"chunk sizes must satisfy 64 <= min <= avg <= max, got {self.to_dict()}"
            )
        if self.avg_size < 256 or self.avg_size > 4 * MiB:
            raise ValueError(f"avg chunk size {self.avg_size} outside [256, 4 MiB]")
        if self.max_size > MAX_CHUNK_SIZE_LIMIT:
            raise ValueError(f"max chunk size {self.max_size} exceeds {MAX_CHUNK_SIZE_LIMIT}")

    @classmethod
    def from_avg(cls, avg: int) -> ChunkParams:
        """min = avg/4, max = avg*4: FastCDC's usual spread."""
        return cls(min_size=avg // 4, avg_size=avg, max_size=avg * 4)

    def to_dict(self) -> dict[str, int]:
        return {"min": self.min_size, "avg": self.avg_size, "max": self.max_size}

    @classmethod
    def from_dict(cls, data: dict) -> ChunkParams:
        try:
            return cls(int(data["min"]), int(data["avg"]), int(data["max"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"chunk parameters need integer min, avg and max: {exc}") from None


# Chosen by bench/chunking.py (see docs/CHUNKING.md).
DEFAULT_PARAMS = ChunkParams.from_avg(64 * KiB)
