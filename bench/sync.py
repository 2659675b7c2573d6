"""End-to-end sync benchmarks: a real server and two real daemons on 127.0.0.1.

    python -m bench.sync [--quick] [--idle-files N]

Prints, each next to a baseline measured in the same run:
  1. propagation latency of a new 10 KB file A -> B (median of 20; target p50 <= 250 ms),
     against one HTTP round trip to the same server;
  2. a 1-byte insertion at the start of a synced 100 MiB file: bytes uploaded by A and
     downloaded by B (target <= 2 average chunks plus metadata) and time until B matches;
  3. 2,000 files of 100 KB created at once on A: time until all are on B (files/s),
     against `cp -r` of the same files on this disk;
  4. an idle daemon over N files: RSS and CPU seconds per minute, and the time from a
     restart to "up to date" with nothing changed.
The server runs with its default chunk parameters.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.peers.procs import cpu_seconds as proc_cpu_seconds
from bench.peers.procs import status_kib
from tests.support.devices import DeviceProc, converge, wait_for
from tests.support.server import ServerProc


def rss_mib(pid: int) -> float:
    return status_kib(pid, "VmRSS") / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    return proc_cpu_seconds(pid, children=False)


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()
    except FileNotFoundError:
        return False


def latency(a: DeviceProc, b: DeviceProc, server: ServerProc, runs: int) -> None:
    times = []
    for i in range(runs):
        data = os.urandom(10_000)
        target = b.folder / f"lat/{i}.bin"
        (a.folder / "lat").mkdir(exist_ok=True)
        start = time.perf_counter()
        (a.folder / f"lat/{i}.bin").write_bytes(data)
        while not (target.exists() and target.read_bytes() == data):
            time.sleep(0.002)
        times.append(time.perf_counter() - start)
    rtts = []
    with httpx.Client() as c:
        for _ in range(20):
            t = time.perf_counter()
            c.get(server.url + "/healthz")
            rtts.append(time.perf_counter() - t)
    p50 = statistics.median(times)
    print(
        f"1. latency 10 KB A->B: median {p50 * 1000:.0f} ms, min {min(times) * 1000:.0f},"
        f" max {max(times) * 1000:.0f} (target 250 ms: {p50 / 0.25:.2f}x);"
        f" baseline HTTP round trip {statistics.median(rtts) * 1000:.1f} ms"
    )


def insertion(a: DeviceProc, b: DeviceProc, mib: int) -> None:
    big = os.urandom(mib << 20)
    (a.folder / "big.bin").write_bytes(big)
    converge(a, b, timeout=600)
    avg = a.status().get("chunk_avg") or 0
    up0, down0 = a.status()["uploaded_bytes_total"], b.status()["downloaded_bytes_total"]
    start = time.perf_counter()
    (a.folder / "big.bin").write_bytes(b"!" + big)
    wait_for(lambda: same_file(a.folder / "big.bin", b.folder / "big.bin"), "insertion", 600)
    took = time.perf_counter() - start
    up = a.status()["uploaded_bytes_total"] - up0
    down = b.status()["downloaded_bytes_total"] - down0
    print(
        f"2. 1-byte insertion at 0 of {mib} MiB: A uploaded {up / 1024:.0f} KiB, B downloaded"
        f" {down / 1024:.0f} KiB ({up / len(big) * 100:.3f}% of the file"
        + (f", {up / avg:.1f} average chunks" if avg else "")
        + f"); B matched after {took:.2f} s"
    )


def many_files(a: DeviceProc, b: DeviceProc, count: int, size: int) -> None:
    src = Path(tempfile.mkdtemp(prefix="sd-bench-"))
    for i in range(count):
        (src / f"f{i:05}.bin").write_bytes(os.urandom(size))
    t = time.perf_counter()
    subprocess.run(["cp", "-r", str(src), str(src) + "-copy"], check=True)
    cp_time = time.perf_counter() - t
    shutil.rmtree(str(src) + "-copy")
    start = time.perf_counter()
    shutil.copytree(src, a.folder / "many")
    want = count

    def arrived() -> bool:
        d = b.folder / "many"
        return d.is_dir() and len(os.listdir(d)) == want

    wait_for(arrived, "all files on B", 900)
    wait_for(lambda: b.idle(), "B idle", 300)
    took = time.perf_counter() - start
    shutil.rmtree(src)
    print(
        f"3. {count} files of {size // 1000} KB: all on B after {took:.2f} s"
        f" ({count / took:.0f} files/s); baseline cp -r {cp_time:.2f} s"
        f" ({count / cp_time:.0f} files/s)"
    )


def idle(a: DeviceProc, files: int, minutes: float) -> None:
    for i in range(files):
        d = a.folder / "idle" / f"d{i // 1000:03}"
        if i % 1000 == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}").write_bytes(b"x")
    wait_for(lambda: a.idle(), "A indexes and uploads the idle tree", 3600)
    time.sleep(10)  # let trailing watcher batches and rescans settle before measuring
    wait_for(lambda: a.idle(), "A idle again", 600)
    assert a.proc is not None
    pid = a.proc.pid
    cpu0 = cpu_seconds(pid)
    time.sleep(minutes * 60)
    cpu = (cpu_seconds(pid) - cpu0) / minutes
    rss = rss_mib(pid)
    a.stop()
    start = time.perf_counter()
    a.start()
    wait_for(lambda: a.idle(), "A up to date after restart", 600)
    restart = time.perf_counter() - start
    print(
        f"4. idle over {files} files: RSS {rss:.0f} MiB, CPU {cpu:.2f} s/min"
        f" ({cpu / 60 * 100:.2f}% of a core); restart to up to date {restart:.2f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--idle-files", type=int, default=100_000)
    ap.add_argument("--idle-minutes", type=float, default=1.0)
    args = ap.parse_args()
    runs, mib, count = (5, 8, 200) if args.quick else (20, 100, 2000)
    idle_files = 2000 if args.quick else args.idle_files
    idle_minutes = 0.1 if args.quick else args.idle_minutes

    base = Path(tempfile.mkdtemp(prefix="sd-bench-srv-"))
    server = ServerProc(base / "data", chunking=None).start()
    devices: list[DeviceProc] = []
    try:
        server.adduser("bench")
        a, b = DeviceProc("bench-a", server), DeviceProc("bench-b", server)
        devices += [a, b]
        for d in devices:
            d.link("bench")
            d.start()
        latency(a, b, server, runs)
        insertion(a, b, mib)
        many_files(a, b, count, 100_000)
        b.stop()
        idle(a, idle_files, idle_minutes)
    finally:
        for d in devices:
            d.cleanup()
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
