"""The debounce logic on a fake clock: no sleeping, no threads."""

from __future__ import annotations

import pytest

from syncd.watcher.debounce import Batch, Debouncer


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def deb(clock: FakeClock) -> Debouncer:
    return Debouncer(quiet=0.5, max_delay=3.0, clock=clock)


def test_nothing_pending(deb: Debouncer):
    assert deb.deadline() is None
    assert deb.take() is None
    assert deb.take(force=True) is None
    deb.add([])
    assert deb.deadline() is None


def test_released_after_quiet(deb: Debouncer, clock: FakeClock):
    deb.add(["a"])
    assert deb.deadline() == clock.t + 0.5
    clock.advance(0.49)
    assert deb.take() is None
    clock.advance(0.01)
    assert deb.take() == Batch(frozenset({"a"}))
    assert deb.take() is None
    assert deb.deadline() is None
    assert len(deb) == 0


def test_events_extend_the_quiet_time(deb: Debouncer, clock: FakeClock):
    deb.add(["a"])
    clock.advance(0.4)
    deb.add(["b"])
    clock.advance(0.4)
    assert deb.take() is None  # 0.4 s since "b"
    deb.add(["a"])  # a repeat counts: the file is still being written
    clock.advance(0.4)
    assert deb.take() is None
    clock.advance(0.1)
    assert deb.take() == Batch(frozenset({"a", "b"}))


def test_max_delay_caps_a_never_ending_burst(deb: Debouncer, clock: FakeClock):
    deb.add(["log"])
    released = None
    for _ in range(100):
        clock.advance(0.25)
        deb.add(["log", "other"])
        released = deb.take()
        if released is not None:
            break
    assert released == Batch(frozenset({"log", "other"}))
    assert clock.t == pytest.approx(1003.0)


def test_a_new_batch_starts_after_a_release(deb: Debouncer, clock: FakeClock):
    deb.add(["a"])
    clock.advance(1)
    assert deb.take() == Batch(frozenset({"a"}))
    clock.advance(10)
    deb.add(["b"])
    assert deb.deadline() == clock.t + 0.5  # max_delay counts from "b", not "a"


def test_rescan_all(deb: Debouncer, clock: FakeClock):
    deb.add(["a"])
    deb.rescan_all("queue overflow")
    deb.rescan_all("second reason is not kept")
    clock.advance(0.5)
    assert deb.take() == Batch(frozenset({"a"}), rescan_all=True, reason="queue overflow")
    deb.rescan_all("later")
    clock.advance(0.5)
    assert deb.take() == Batch(frozenset(), rescan_all=True, reason="later")


def test_force(deb: Debouncer):
    deb.add(["a"])
    assert deb.take(force=True) == Batch(frozenset({"a"}))


def test_pending_is_a_snapshot(deb: Debouncer):
    deb.add(["a", "b"])
    pending = deb.pending
    deb.add(["c"])
    assert pending == {"a", "b"}
    assert deb.pending == {"a", "b", "c"}


@pytest.mark.parametrize(("quiet", "max_delay"), [(-1, 1), (2, 1)])
def test_bad_settings(quiet, max_delay):
    with pytest.raises(ValueError):
        Debouncer(quiet=quiet, max_delay=max_delay)
    with pytest.raises(ValueError):
        Debouncer(burst=0)


def test_a_bursts_complete_files_go_before_the_quiet(clock: FakeClock):
    deb = Debouncer(quiet=0.5, max_delay=3.0, clock=clock, burst=3)
    deb.add(["dir"])  # a folder created: not complete, waits for the quiet
    deb.add(["dir/a", "dir/b"])  # created, still being written
    deb.add(["dir/a", "dir/b"], complete=True)  # closed after writing
    deb.add(["dir/c"], complete=True)
    deb.add(["dir/c"])  # written to again: not complete any more
    assert deb.take() is None
    assert deb.deadline() == clock.t + 0.5
    deb.add(["dir/d"], complete=True)
    assert deb.deadline() == clock.t  # three complete: due now
    assert deb.take() == Batch(frozenset({"dir/a", "dir/b", "dir/d"}))
    assert deb.pending == {"dir", "dir/c"}
    assert deb.take() is None  # the rest waits for the quiet ...
    clock.advance(0.5)
    assert deb.take() == Batch(frozenset({"dir", "dir/c"}))  # ... and goes whole
    assert deb.deadline() is None


def test_an_early_batch_keeps_the_max_delay_of_the_rest(clock: FakeClock):
    deb = Debouncer(quiet=0.5, max_delay=3.0, clock=clock, burst=2)
    deb.add(["slow"])
    for i in range(20):  # a long burst of complete files, no quiet in it
        clock.advance(0.2)
        deb.add([f"f{i}"], complete=True)
        batch = deb.take()
        if "slow" in deb.pending:
            assert batch is None or "slow" not in batch.paths
    assert "slow" not in deb.pending  # released at max_delay with whatever was left


def test_no_early_batch_while_a_full_rescan_is_due(clock: FakeClock):
    deb = Debouncer(quiet=0.5, max_delay=3.0, clock=clock, burst=1)
    deb.rescan_all("overflow")
    deb.add(["a"], complete=True)
    assert deb.take() is None  # the full rescan covers it: wait for it
    clock.advance(0.5)
    assert deb.take() == Batch(frozenset({"a"}), rescan_all=True, reason="overflow")


def test_default_clock_is_monotonic():
    deb = Debouncer()
    deb.add(["a"])
    assert deb.take(force=True) == Batch(frozenset({"a"}))


def test_public_names():
    import syncd.watcher
    import syncd.watcher.debounce
    import syncd.watcher.watch

    for module in (syncd.watcher, syncd.watcher.debounce, syncd.watcher.watch):
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)
