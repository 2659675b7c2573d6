"""The status snapshot: batch progress, recent changes, and waiting for a change."""

from __future__ import annotations

import threading

from syncd.status import RECENT, SyncStatus


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_a_batch_counts_files_and_bytes_per_direction_then_resets():
    clock = FakeClock()
    st = SyncStatus(clock=clock, initial=True)
    st.update(busy=True)
    assert st.snapshot()["progress"]["phase"] == "initial"
    st.plan(files_up=3, bytes_up=3000, files_down=1, bytes_down=500)
    st.count("up", 1200)
    snap = st.snapshot()
    assert snap["state"] == "syncing"
    assert snap["progress"]["up"] == {
        "files_done": 0, "files_total": 3, "bytes_done": 1200, "bytes_total": 3000,
    }  # fmt: skip
    assert snap["progress"]["started"] == 1000.0
    clock.t = 1002.0
    # two uploads done (a dedup'd chunk never crossed the wire: the file sizes count)
    st.finished([("a.txt", "up", "uploaded", 1000), ("b.txt", "up", "uploaded", 1500)])
    up = st.snapshot()["progress"]["up"]
    assert (up["files_done"], up["bytes_done"]) == (2, 2500)
    # a second round in the same batch adds to the totals
    st.plan(files_up=1, bytes_up=500, files_down=1, bytes_down=500)
    assert st.snapshot()["progress"]["up"]["files_total"] == 3
    st.finished([("c.txt", "up", "uploaded", 500), ("d.txt", "both", "conflict", 500)])
    snap = st.snapshot()
    assert snap["progress"]["up"]["files_done"] == 3
    assert snap["progress"]["down"]["files_done"] == 1  # the conflict counts both ways
    assert [c["path"] for c in snap["recent"]] == ["d.txt", "c.txt", "b.txt", "a.txt"]
    assert snap["recent"][0] == {"path": "d.txt", "direction": "both", "action": "conflict",
                                 "time": 1002.0}  # fmt: skip
    st.finish_cycle(1003.0)
    st.update(busy=False)
    snap = st.snapshot()
    assert snap["state"] == "up to date" and snap["last_sync"] == 1003.0
    assert snap["progress"]["phase"] is None
    assert snap["progress"]["up"] == dict.fromkeys(snap["progress"]["up"], 0)
    st.update(busy=True)
    assert st.snapshot()["progress"]["phase"] == "sync"  # the initial sync is over
    assert len(snap["recent"]) == 4  # recent changes outlive the batch


def test_bytes_done_never_exceed_the_total_and_recent_is_bounded():
    st = SyncStatus(clock=FakeClock())
    st.plan(files_up=1, bytes_up=100, files_down=0, bytes_down=0)
    st.count("up", 150)  # chunk framing, retries
    assert st.snapshot()["progress"]["up"]["bytes_done"] == 100
    st.finished([(f"f{i}", "down", "downloaded", 0) for i in range(RECENT + 5)])
    assert len(st.snapshot()["recent"]) == RECENT
    assert st.snapshot()["progress"]["down"]["files_done"] == 0  # nothing was planned


def test_version_moves_only_on_a_real_change_and_wakes_waiters():
    st = SyncStatus(clock=FakeClock())
    v0 = st.snapshot()["version"]
    st.update(paused=False)  # already so
    assert st.snapshot()["version"] == v0
    assert st.wait_change(v0, 0.01) == v0  # nothing changed: the timeout answers
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(st.wait_change(v0, 60)))
    waiter.start()
    st.update(paused=True)
    waiter.join(30)
    assert got == [v0 + 1]
    assert st.wait_change(v0, 60) == v0 + 1  # already different: at once


def test_a_plan_after_an_outage_means_back_online():
    st = SyncStatus(clock=FakeClock())
    st.update(offline_since=900.0, next_retry=1010.0, offline_reason="refused", busy=True)
    assert st.snapshot()["state"] == "offline"
    st.plan(files_up=2, bytes_up=10, files_down=0, bytes_down=0)  # the pull got through
    snap = st.snapshot()
    assert snap["state"] == "syncing" and snap["offline_since"] is None
