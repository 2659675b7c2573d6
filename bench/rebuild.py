"""B's rebuild of a big file from local copies of its chunks, against a plain copy.

    python -m bench.rebuild [--mib 100] [--runs 7] [--no-fsync]

A file of random bytes is indexed as synced; then one byte in its middle changes
elsewhere (the changed chunk is put in another local file, so nothing needs a
server), and the daemon's own code writes the new version: `Executor._chunks_for`
finds and verifies each chunk in the local copies, `LocalFS.write_file` stages,
flushes and renames it. The baseline, measured in the same run on the same disk, is
the least any writer of a new version must do: read the old file and write a full
copy of it, flushed and renamed, with no hashing. The ratio is the rebuild's median
over the copy's median. `--no-fsync` leaves out the flushes of both, to see the CPU
path alone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from syncd.chunker import DEFAULT_PARAMS, chunk_file
from syncd.engine.executor import Executor
from syncd.engine.localfs import LocalFS
from syncd.indexer.db import Index
from syncd.indexer.state import Block, FileState


def _index_file(index: Index, root: Path, path: str, content: bytes) -> tuple[Block, ...]:
    (root / path).write_bytes(content)
    blocks = tuple(Block(r.id, r.length) for r in chunk_file(root / path, DEFAULT_PARAMS))
    st = os.lstat(root / path)
    local = FileState(path, "file", st.st_size, 0o644, st.st_mtime_ns, blocks, None, st.st_ino)
    with index.transaction():
        index.put("local", local)
        index.put("base", FileState(path, "file", st.st_size, 0o644, 1, blocks, 1, None))
    return blocks


def _copy(src: Path, dst: Path, durable: bool) -> None:
    tmp = dst.with_name(dst.name + ".tmp")
    with open(src, "rb") as fin, open(tmp, "wb") as fout:
        shutil.copyfileobj(fin, fout, 4 << 20)
        fout.flush()
        if durable:
            os.fsync(fout.fileno())
    os.replace(tmp, dst)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=100)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--no-fsync", action="store_true")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sd-rebuild-", dir=Path.cwd()))
    real_fsync = os.fsync
    if args.no_fsync:
        os.fsync = lambda fd: None  # type: ignore[assignment]
    try:
        (root / ".syncd").mkdir()
        index = Index.open(root / ".syncd" / "index.db")
        fs = LocalFS(root, root / ".syncd")
        ex = Executor(index, fs, None, 1, "bench")  # type: ignore[arg-type]  # no server
        data = bytearray(os.urandom(args.mib << 20))
        rebuild: list[float] = []
        copy: list[float] = []
        for run in range(args.runs):
            _index_file(index, root, "big.bin", bytes(data))
            data[len(data) // 2 + run] ^= 0xFF
            blocks = _index_file(index, root, "edited.bin", bytes(data))
            remote = FileState("big.bin", "file", len(data), 0o644, 10**18, blocks, 2, None)
            expect = index.get("local", "big.bin")
            os.sync()
            start = time.perf_counter()
            chunks = ex._chunks_for(remote)
            fs.write_file("big.bin", remote, chunks, expect, verified=True)
            rebuild.append(time.perf_counter() - start)
            index.drop_caches()
            if (root / "big.bin").read_bytes() != data:
                raise SystemExit("the rebuilt file is not the new version")
            os.sync()
            start = time.perf_counter()
            _copy(root / "edited.bin", root / "copy.bin", durable=not args.no_fsync)
            copy.append(time.perf_counter() - start)
        r, c = statistics.median(rebuild), statistics.median(copy)
        ms = 1000
        print(f"{args.mib} MiB, one chunk changed, {args.runs} runs, fsync {not args.no_fsync}")
        print(f"  rebuild    {r * ms:7.0f} ms  [{min(rebuild) * ms:.0f}-{max(rebuild) * ms:.0f}]")
        print(f"  plain copy {c * ms:7.0f} ms  [{min(copy) * ms:.0f}-{max(copy) * ms:.0f}]")
        print(f"  rebuild / copy: {r / c:.2f}")
        index.close()
    finally:
        os.fsync = real_fsync
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
