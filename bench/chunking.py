"""Chunking benchmark: throughput against raw BLAKE3, and bytes re-sent after edits.

    python -m bench.chunking [--size-mib 256] [--edit-mib 100] [--quick]

For avg chunk sizes 16, 64, 256 and 1024 KiB (min = avg/4, max = avg*4) it prints the
chunk+hash throughput over random data next to the raw BLAKE3 throughput of the same
bytes measured in the same run (the ratio is the figure; target >= 0.7), the bytes that
must be re-sent after (a) a 1-byte overwrite in the middle, (b) a 1-byte insertion at
offset 0 and (c) a 4 KiB insertion in the middle of a file, and the chunks per 100 MiB
(each costs ~100 bytes of metadata and an index row).
"""

from __future__ import annotations

import argparse
import io
import os
import time

import blake3

from syncd.chunker import ChunkParams, chunk_stream

KiB, MiB = 1024, 1024 * 1024


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def resent(original: list, edited: list) -> int:
    known = {r.id for r in original}
    return sum(r.length for r in edited if r.id not in known)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--edit-mib", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="16 MiB / 16 MiB smoke run")
    args = ap.parse_args()
    size, edit_size = (16, 16) if args.quick else (args.size_mib, args.edit_mib)
    data = os.urandom(size * MiB)
    base = data[: edit_size * MiB]
    mid = len(base) // 2
    edits = {
        "overwrite 1 B mid": base[:mid] + bytes([base[mid] ^ 0xFF]) + base[mid + 1 :],
        "insert 1 B at 0": b"\x00" + base,
        "insert 4 KiB mid": base[:mid] + os.urandom(4 * KiB) + base[mid:],
    }
    raw = best_of(3, lambda: blake3.blake3(data).digest())
    raw_mbs = len(data) / MiB / raw
    print(f"{size} MiB of random data; raw BLAKE3 of the same bytes: {raw_mbs:.0f} MiB/s")
    print(f"edits on a {edit_size} MiB file; bytes that must be re-sent after each edit\n")
    head = f"{'avg':>8} {'min/max':>14} {'chunk+hash':>11} {'ratio':>6}"
    head += "".join(f" {name:>18}" for name in edits) + f" {'chunks/100MiB':>14}"
    print(head)
    for avg in (16 * KiB, 64 * KiB, 256 * KiB, 1024 * KiB):
        params = ChunkParams.from_avg(avg)
        took = best_of(3, lambda p=params: chunk_stream(io.BytesIO(data), p))
        mbs = len(data) / MiB / took
        original = chunk_stream(io.BytesIO(base), params)
        cols = []
        for edited in edits.values():
            cols.append(resent(original, chunk_stream(io.BytesIO(edited), params)))
        per_100 = len(original) * 100 / edit_size
        line = f"{avg // KiB:>6}Ki {params.min_size // KiB:>5}Ki/{params.max_size // KiB:>5}Ki"
        line += f" {mbs:>7.0f}MB/s {mbs / raw_mbs:>6.2f}"
        line += "".join(f" {c / KiB:>15.0f}KiB" for c in cols) + f" {per_100:>14.0f}"
        print(line)


if __name__ == "__main__":
    main()
