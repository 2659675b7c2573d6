"""The real Watcher on real temp folders.

Batches (and RESCAN for a full-rescan request) are awaited on a queue with a generous
timeout; nothing asserts how long anything took. The save-dance test runs on a fake
clock that only the test moves, so "one batch" does not depend on the machine's speed.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.indexer.ignore import Ignore
from syncd.watcher import Watcher
from syncd.watcher.watch import OVERFLOW, ROOT_GONE

TIMEOUT = 15.0
RESCAN = "rescan everything"
Item = frozenset[str] | str


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def collect(q: queue.Queue[Item], want: set[str]) -> set[str]:
    """Union of batches until `want` has arrived (or the generous timeout passed)."""
    got: set[str] = set()
    deadline = time.monotonic() + TIMEOUT
    while not want <= got:
        try:
            batch = q.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if batch != RESCAN:
            got |= batch
    return got


def wait_for_rescan(q: queue.Queue[Item]) -> bool:
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            item = q.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return False
        if item == RESCAN:
            return True


def watch(root: Path, q: queue.Queue[Item], **kwargs) -> Watcher:
    kwargs.setdefault("quiet", 0.1)
    kwargs.setdefault("max_delay", 1.0)
    return Watcher(root, q.put, on_overflow=lambda: q.put(RESCAN), **kwargs)


def wait_until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


@pytest.fixture
def q() -> queue.Queue[Item]:
    return queue.Queue()


@pytest.fixture
def watcher(root: Path, q: queue.Queue[Item]) -> Iterator[Watcher]:
    with watch(root, q) as w:
        yield w


def test_create_modify_rename_delete(root: Path, q: queue.Queue[Item], watcher: Watcher):
    (root / "a.txt").write_text("one")
    (root / "d").mkdir()
    (root / "d/inner.txt").write_text("x")
    assert {"a.txt", "d", "d/inner.txt"} <= collect(q, {"a.txt", "d", "d/inner.txt"})

    with open(root / "a.txt", "a") as fh:
        fh.write(" two")
    assert "a.txt" in collect(q, {"a.txt"})

    os.rename(root / "a.txt", root / "b.txt")
    assert {"a.txt", "b.txt"} <= collect(q, {"a.txt", "b.txt"})

    os.rename(root / "d", root / "e")
    assert {"d", "e"} <= collect(q, {"d", "e"})

    (root / "b.txt").unlink()
    assert "b.txt" in collect(q, {"b.txt"})

    os.chmod(root / "e/inner.txt", 0o755)
    assert "e/inner.txt" in collect(q, {"e/inner.txt"})

    shutil.rmtree(root / "e")
    assert "e" in collect(q, {"e"})


def test_reading_files_hands_the_watcher_no_events(
    root: Path, q: queue.Queue[Item], watcher: Watcher
):
    """Opens and no-write closes are not even asked of the kernel: syncd reads files in
    the folder all the time (chunking, uploads, local copies of chunks)."""
    (root / "read-me").write_bytes(b"x" * 4096)
    assert "read-me" in collect(q, {"read-me"})
    seen: list[tuple[str, str]] = []
    handle = watcher._event

    def counting(event):  # type: ignore[no-untyped-def]
        seen.append((event.event_type, os.path.basename(event.src_path)))
        handle(event)

    watcher._event = counting  # type: ignore[method-assign]
    for _ in range(50):
        with open(root / "read-me", "rb") as fh:
            fh.read()
    (root / "marker").write_text("after the reads")  # its events follow the reads'
    assert "marker" in collect(q, {"marker"})
    assert [name for _, name in seen if name != "marker"] == []


def test_moves_across_the_folder_boundary(
    tmp_path: Path, root: Path, q: queue.Queue[Item], watcher: Watcher
):
    outside = tmp_path / "outside"
    (outside / "incoming").mkdir(parents=True)
    (outside / "incoming/file.txt").write_text("x")
    os.rename(outside / "incoming", root / "incoming")
    assert "incoming" in collect(q, {"incoming"})  # the scanner walks the folder it names

    (root / "leaving.txt").write_text("bye")
    assert "leaving.txt" in collect(q, {"leaving.txt"})
    os.rename(root / "leaving.txt", outside / "leaving.txt")
    assert "leaving.txt" in collect(q, {"leaving.txt"})


# watchdog may warn when it races a fast `mkdir -p` while adding watches; harmless
@pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")
def test_state_folder_is_not_reported(root: Path, q: queue.Queue[Item], watcher: Watcher):
    (root / ".syncd/tmp").mkdir(parents=True)
    (root / ".syncd/tmp/download").write_bytes(b"partial")
    (root / "sentinel").write_text("s")
    got = collect(q, {"sentinel"})
    assert "sentinel" in got
    assert not {p for p in got if p == ".syncd" or p.startswith(".syncd/")}


def test_ignored_paths_are_dropped_and_rules_reload(root: Path, q: queue.Queue[Item]):
    (root / ".syncignore").write_text("build/\n")
    with watch(root, q, ignore=Ignore.from_root(root)):
        (root / "build").mkdir()
        (root / "build/out.o").write_text("o")
        (root / ".notes.txt.swp").write_text("swap")
        (root / "notes.txt").write_text("n")
        got = collect(q, {"notes.txt"})
        assert "notes.txt" in got
        assert not got & {"build", "build/out.o", ".notes.txt.swp"}

        (root / ".syncignore").write_text("build/\n*.log\n")
        assert ".syncignore" in collect(q, {".syncignore"})
        (root / "run.log").write_text("l")
        (root / "sentinel").write_text("s")
        got = collect(q, {"sentinel"})
        assert "sentinel" in got
        assert "run.log" not in got


def test_editor_save_dance_is_one_batch(root: Path, q: queue.Queue[Item]):
    (root / "doc.txt").write_text("version 1")
    clock = FakeClock()
    with watch(root, q, quiet=0.5, max_delay=5.0, clock=clock, health_interval=0.05) as w:
        # backup copy, new content into a temp file, rename over the original, drop backup
        shutil.copy2(root / "doc.txt", root / "doc.txt~")
        (root / ".doc.txt.tmp42").write_text("version 2")
        os.rename(root / ".doc.txt.tmp42", root / "doc.txt")
        (root / "doc.txt~").unlink()
        dance = {"doc.txt", "doc.txt~", ".doc.txt.tmp42"}
        assert wait_until(lambda: dance <= w.pending()), w.pending()
        assert q.empty()  # the clock stands still: nothing is due yet
        # past max_delay: due even if a late event (the unlink's) restarts the quiet time
        clock.advance(10)
        w.poke()
        batch = q.get(timeout=TIMEOUT)
    assert batch != RESCAN
    assert dance <= batch


def test_a_long_burst_of_new_files_goes_out_in_parts(root: Path, q: queue.Queue[Item]):
    """Files closed after writing leave in batches of at least `burst` while the burst
    goes on (the clock stands still: the quiet never comes); the folder, a file still
    open and the last few files wait for the quiet."""
    clock = FakeClock()
    files = {f"d/f{i}" for i in range(10)}
    with watch(root, q, clock=clock, burst=5, health_interval=0.05) as w:
        (root / "d").mkdir()
        # watched once its event is in (files written before only get created events)
        assert wait_until(lambda: "d" in w.pending()), w.pending()
        with open(root / "d" / "open", "wb") as f:
            f.write(b"still being written")
            f.flush()
            for name in sorted(files):
                (root / name).write_bytes(b"x" * 100)
            first = q.get(timeout=TIMEOUT)
            assert first != RESCAN
            assert len(first) >= 5
            assert first <= files
            early = set(first)

            def all_seen() -> bool:  # every file's events are in: sent early, or pending
                while not q.empty():
                    batch = q.get_nowait()
                    assert batch != RESCAN and batch <= files
                    early.update(batch)
                return files <= early | w.pending() and "d/open" in w.pending()

            assert wait_until(all_seen), (early, w.pending())
            clock.advance(10)  # the quiet comes while "open" is still open
            w.poke()
            rest = collect(q, {"d", "d/open"} | (files - early))
        assert {"d", "d/open"} | files <= early | rest


def test_a_moved_folder_goes_out_with_its_files(root: Path, q: queue.Queue[Item]):
    """A folder's move is complete like a file's: in a burst, the batch that carries
    its files' moves carries the folder too, so the scan sees the whole new subtree
    in the cycle that sees the old one gone (else the old files' deletion goes out
    with only part of the new files, and the other device loses their content)."""
    clock = FakeClock()
    files = {f"f{i}" for i in range(10)}
    (root / "old").mkdir()
    for name in files:
        (root / "old" / name).write_bytes(b"x" * 100)
    with watch(root, q, clock=clock, burst=5, health_interval=0.05):
        os.rename(root / "old", root / "new")
        first = q.get(timeout=TIMEOUT)  # the quiet never comes: only the early batch
    assert first != RESCAN
    assert {"old", "new"} <= first


def test_overflow_asks_for_a_full_rescan(q: queue.Queue[Item], watcher: Watcher):
    # watchdog handles IN_Q_OVERFLOW itself and only logs it: that log is the signal
    logging.getLogger("watchdog.observers.inotify_c").warning(
        "Inotify queue overflowed; filesystem events were lost"
    )
    assert wait_for_rescan(q)
    assert watcher.last_loss == OVERFLOW


def test_overflow_listener_is_removed_on_stop(root: Path, q: queue.Queue[Item]):
    watchdog_logger = logging.getLogger("watchdog")
    before = list(watchdog_logger.handlers)
    with watch(root, q):
        assert len(watchdog_logger.handlers) == len(before) + 1
    assert watchdog_logger.handlers == before


def test_root_deleted(root: Path, q: queue.Queue[Item], watcher: Watcher):
    shutil.rmtree(root)
    assert wait_for_rescan(q)
    assert watcher.last_loss == ROOT_GONE
    assert wait_until(lambda: watcher.error is not None)


def test_cannot_watch_a_missing_folder(tmp_path: Path, q: queue.Queue[Item]):
    with watch(tmp_path / "missing", q) as w:
        assert wait_for_rescan(q)
        assert w.error is not None
        assert "cannot watch" in w.error
        assert w.last_loss == w.error


def test_a_failing_consumer_does_not_stop_the_watcher(root: Path, q: queue.Queue[Item]):
    calls = {"n": 0}

    def consumer(paths: frozenset[str]) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("consumer bug")
        q.put(paths)

    with Watcher(root, consumer, on_overflow=lambda: None, quiet=0.1, max_delay=1.0):
        (root / "first").write_text("1")
        assert wait_until(lambda: calls["n"] >= 1)
        (root / "second").write_text("2")
        assert "second" in collect(q, {"second"})
