"""One seeded run of three in-process devices: random edits, syncs, interleavings and
faults, then quiescence and the invariants of tests/sim/checks.py."""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from syncd.chunker import chunk_bytes
from syncd.transport.client import ServerClient
from tests.sim.checks import check
from tests.sim.engine import SimCrash, SimDevice, VirtualTime
from tests.sim.faults import arm_cut, restart_server
from tests.sim.model import Ledger, User
from tests.sim.runner import PASSWORD
from tests.support.server import ServerProc

DEVICES = ("alpha", "beta", "gamma")


@dataclass(frozen=True)
class Plan:
    seed: int
    ops: int = 80  # driver steps before quiescing
    crashes: bool = True
    server_restarts: int = 1  # at most this many per run
    interleave: float = 0.1  # chance that a hook point does something


class Scenario:
    def __init__(self, server: ServerProc, base: Path, plan: Plan, user: str) -> None:
        self.server = server
        self.plan = plan
        self.rng = random.Random(plan.seed)
        random.seed(plan.seed)  # the loop's own backoff jitter: replays the same schedule
        self.ledger = Ledger()
        self.time = VirtualTime()
        self.thread = threading.current_thread()
        self.stats: Counter[str] = Counter()
        self.trace: list[str] = []
        self.quiescing = False
        self.restarts_left = plan.server_restarts
        self.devices = [SimDevice(self, n, base, lambda: server.port) for n in DEVICES]
        self.users: dict[str, User] = {}
        for d in self.devices:
            d.login(user, PASSWORD)
        params = self.devices[0].params
        assert params is not None

        def chunk(data: bytes) -> tuple[str, ...]:
            return tuple(r.id for r in chunk_bytes(data, params))

        for d in self.devices:
            tag = f"s{plan.seed}"
            self.users[d.name] = User(d.name, d.folder, self.rng, self.ledger, tag, chunk)
            d.boot()

    def note(self, text: str) -> None:
        self.trace.append(f"t={self.time.now - 1_700_000_000:7.1f} {text}")

    # -- the run -----------------------------------------------------------------------
    def run(self) -> list[str]:
        """Drive the run, quiesce, check; the violations found (empty: all hold)."""
        try:
            for _ in range(self.plan.ops):
                self.step()
                self.housekeeping()
            self.quiesce()
            client = ServerClient(self.server.url, self.devices[0].token)
            try:
                folders = {d.name: d.folder for d in self.devices}
                return check(folders, client, self.devices[0].ns, self.ledger, self.stats)
            finally:
                client.close()
        finally:
            for d in self.devices:
                self.stats.update(
                    {f"proxy_{k}": v for k, v in d.proxy.stats.items() if k.startswith("fault_")}
                )
                d.close()
            for u in self.users.values():
                self.stats.update({f"op_{k}": v for k, v in u.ops.items()})

    def step(self) -> None:
        actions = {
            "edit": 6.0,
            "sync": 5.0,
            "concurrent": 0.6,
            "time": 1.0,
            "offline": 0.4,
            "cut": 0.4,
            "crash": 0.25 if self.plan.crashes else 0.0,
            "pause": 0.15,
            "server": 0.2 if self.restarts_left else 0.0,
        }
        action = self.rng.choices(list(actions), list(actions.values()))[0]
        getattr(self, f"_do_{action}")()

    def _do_edit(self, device: SimDevice | None = None) -> None:
        d = device or self.rng.choice(self.devices)
        op, paths = self.users[d.name].random_op()
        self.note(f"{d.name} user: {op} {paths}")
        d.post_dirty(paths)  # the watcher's report (nothing while the daemon is down)

    def _do_sync(self) -> None:
        up = [d for d in self.devices if d.up]
        if not up:
            return
        d = self.rng.choice(up)
        for _ in range(self.rng.randrange(1, 4)):
            self.note(f"{d.name} tick")
            self.stats["ticks"] += 1
            d.tick()

    def _do_concurrent(self) -> None:
        """Both devices edit the same file before either syncs."""
        a, b = self.rng.sample(self.devices, 2)
        files = sorted(
            p.relative_to(a.folder).as_posix()
            for p in a.folder.rglob("*")
            if p.is_file() and ".syncd" not in p.parts
        )
        path = self.rng.choice(files) if files else "shared.txt"
        for d in (a, b):
            try:
                touched = self.users[d.name].write(path)
            except OSError:
                continue
            d.post_dirty(touched)
        self.stats["op_concurrent_edit"] += 1
        self.note(f"{a.name}+{b.name} concurrent edit of {path}")

    def _do_time(self) -> None:
        dt = self.rng.uniform(0.1, 10.0)
        self.time.advance(dt)

    def _do_offline(self, device: SimDevice | None = None) -> None:
        d = device or self.rng.choice(self.devices)
        d.proxy.set("drop")
        d.offline_steps = self.rng.randrange(2, 15)
        self.stats["fault_offline"] += 1
        self.note(f"{d.name} offline for {d.offline_steps} steps")

    def _do_cut(self) -> None:
        d = self.rng.choice(self.devices)
        key, note = arm_cut(self.rng, d.proxy)
        self.stats[key] += 1
        self.note(f"{d.name} {note}")

    def _do_crash(self) -> None:
        up = [d for d in self.devices if d.up and not d.ticking]
        if up:
            d = self.rng.choice(up)
            d.kill()
            self.stats["crash_idle"] += 1
            self.note(f"{d.name} kill -9 (idle)")

    def _do_pause(self) -> None:
        """The user pauses a device for a while (`syncd pause`, later `syncd resume`)."""
        d = self.rng.choice([d for d in self.devices if d.up] or self.devices)
        if d.up and not d.paused_steps:
            d.loop.post("pause")  # type: ignore[union-attr]
            d.paused_steps = self.rng.randrange(2, 12)
            self.stats["op_pause"] += 1
            self.note(f"{d.name} paused for {d.paused_steps} steps")

    def _do_server(self) -> None:
        self.restarts_left -= 1
        key, note = restart_server(self.rng, self.server)
        self.stats[key] += 1
        self.note(note)

    def housekeeping(self) -> None:
        """Outages end, crashed devices restart, and the change feed wakes the others."""
        for d in self.devices:
            if d.offline_steps:
                d.offline_steps -= 1
                if not d.offline_steps:
                    d.proxy.heal()
                    self.note(f"{d.name} back online")
            if d.paused_steps:
                d.paused_steps -= 1
                if not d.paused_steps and d.up:
                    d.loop.post("resume")  # type: ignore[union-attr]
                    self.note(f"{d.name} resumed")
            if not d.up:
                d.down_steps -= 1
                if d.down_steps <= 0:
                    d.boot()
                    self.stats["restarts"] += 1
                    self.note(f"{d.name} restarted")
        newest = max(d.cursor() for d in self.devices)
        for d in self.devices:
            if d.up and d.cursor() < newest and self.rng.random() < 0.8:  # 20% missed
                d.loop.post("remote")  # type: ignore[union-attr]

    # -- hooks -------------------------------------------------------------------------
    def interleave(self, device: SimDevice, where: str) -> None:
        """Called at each hook point of `device`'s engine (driver thread)."""
        if self.quiescing:
            return
        self.stats["hook_points"] += 1
        if self.rng.random() >= self.plan.interleave:
            return
        options = {"edit": 5.0, "other": 3.0, "crash": 1.0 if self.plan.crashes else 0.0}
        options["offline"] = 0.7
        what = self.rng.choices(list(options), list(options.values()))[0]
        self.stats[f"interleave_{what}"] += 1
        self.note(f"{device.name} at [{where}]: {what}")
        if what == "edit":
            self._do_edit(device)
        elif what == "other":
            others = [d for d in self.devices if d.up and not d.ticking]
            if others and sum(d.ticking for d in self.devices) < 3:
                self.rng.choice(others).tick()
        elif what == "crash":
            self.stats[f"crash_point {_point(where)}"] += 1
            raise SimCrash(where)
        else:
            self._do_offline(device)

    # -- the end -----------------------------------------------------------------------
    def quiesce(self, rounds: int = 12) -> None:
        """Faults end, every device runs until nothing changes; no full rescan is allowed
        (the 600 s periodic one would hide a change the engine failed to follow)."""
        self.quiescing = True
        self.note("quiesce")
        for d in self.devices:
            d.proxy.heal()
            d.offline_steps = 0
            if d.paused_steps and d.up:
                d.loop.post("resume")  # type: ignore[union-attr]
            d.paused_steps = 0
            if not d.up:
                d.boot()
                self.stats["restarts"] += 1
        for _ in range(rounds):
            for d in self.devices:
                d.loop.post("remote")  # type: ignore[union-attr]
                d.tick()
            self.time.advance(31.0)  # past the longest offline backoff
            for d in self.devices:
                d.tick()
            if self._converged():
                return
        raise AssertionError(f"no convergence after {rounds} quiet rounds:\n{self._why()}")

    def _why(self) -> str:
        """What keeps the devices apart: unsettled paths and differing folders."""
        from tests.sim.checks import _diff
        from tests.support.devices import snapshot

        lines = []
        for d in self.devices:
            assert d.index is not None and d.loop is not None
            trees = [d.index.all(t) for t in ("local", "remote", "base")]
            for path in sorted(set().union(*trees)):
                lo, re, ba = (t.get(path) for t in trees)
                same = ba is not None and ba.same_content(lo) and re is not None
                if not (same and re.rev == ba.rev):  # type: ignore[union-attr]
                    lines.append(f"{d.name} {path}: local={_brief(lo)} remote={_brief(re)}"
                                 f" base={_brief(ba)}")  # fmt: skip
            st = d.loop.status
            lines.append(f"{d.name}: cursor {d.cursor()} problems {st.problems} error {st.error}")
            planned = [f"{type(op).__name__} {op.path}" for op in d.loop._plan(None)]
            lines.append(f"{d.name}: a full plan now would do {planned}")
        first = snapshot(self.devices[0].folder)
        for d in self.devices[1:]:
            lines.append(f"alpha vs {d.name}: {_diff(first, snapshot(d.folder))}")
        return "\n".join(lines)

    def _converged(self) -> bool:
        from tests.support.devices import snapshot

        if not all(d.settled() for d in self.devices):
            return False
        if len({d.cursor() for d in self.devices}) != 1:
            return False
        trees = [snapshot(d.folder) for d in self.devices]
        return all(t == trees[0] for t in trees[1:])


def _brief(state) -> str:
    if state is None:
        return "-"
    if state.kind == "dir":
        return f"dir(rev {state.rev})"
    ids = ",".join(b.id[:6] for b in state.blocks)
    return f"file[{ids}](rev {state.rev}, mode {state.mode:o})"


def _point(where: str) -> str:
    """The kind of hook point: "after POST commit_batch", "write", "read done", ..."""
    words = where.split()
    if words[0] in ("before", "after"):
        last = words[2] if len(words) > 2 else ""
        is_id = len(last) == 64 and all(c in "0123456789abcdef" for c in last)
        return " ".join([*words[:2], "chunk" if is_id else last])
    if words[:2] in (["read", "done"], ["move", "aside"]):
        return " ".join(words[:2])
    return words[0]
