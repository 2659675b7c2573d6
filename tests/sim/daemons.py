"""One seeded run with real daemons: three `syncd start --foreground` processes, each
talking to a real server through its own fault proxy, with real kill -9 and real
server restarts. Timing is real, so a seed replays the same operations and faults,
not the same interleaving; the in-process runs (scenario.py) are the exact replays."""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter

from syncd.transport.client import ServerClient
from tests.sim.checks import check
from tests.sim.faults import arm_cut, restart_server
from tests.sim.model import Ledger, User, key_of
from tests.support.devices import DeviceProc, converge, snapshot
from tests.support.faultproxy import FaultProxy
from tests.support.server import ServerProc

DEVICES = ("alpha", "beta", "gamma")


class DaemonScenario:
    def __init__(self, server: ServerProc, user: str, password: str, seed: int, ops: int) -> None:
        self.server = server
        self.rng = random.Random(seed)
        self.ops = ops
        self.seed = seed
        self.ledger = Ledger()
        self.stats: Counter[str] = Counter()
        self.trace: list[str] = []
        self.started = time.monotonic()
        self.restarts_left = 1
        self.proxies: dict[str, FaultProxy] = {}
        self.devices: dict[str, DeviceProc] = {}
        self.users: dict[str, User] = {}
        self.heal_at: dict[str, int] = {}  # device -> step at which its network returns
        self.revive_at: dict[str, int] = {}  # device -> step at which it restarts
        for name in DEVICES:
            proxy = FaultProxy(lambda: ("127.0.0.1", server.port)).start()
            dev = DeviceProc(name, server, via=proxy.url)
            self.proxies[name], self.devices[name] = proxy, dev
            dev.link(user, password)
            self.users[name] = User(name, dev.folder, self.rng, self.ledger, f"d{seed}")
        for dev in self.devices.values():
            dev.start()

    def note(self, text: str) -> None:
        self.trace.append(f"{time.monotonic() - self.started:6.2f}s {text}")

    def run(self) -> list[str]:
        try:
            for step in range(self.ops):
                self.step()
                self.housekeeping(step)
            self.quiesce()
            any_dev = self.devices[DEVICES[0]]
            token = (any_dev.home / "token").read_text().strip()
            ns = _namespace(any_dev)
            client = ServerClient(self.server.url, token)
            try:
                folders = {n: d.folder for n, d in self.devices.items()}
                return check(folders, client, ns, self.ledger, self.stats)
            finally:
                client.close()
        finally:
            for name, dev in self.devices.items():
                proxy = self.proxies[name]
                self.stats.update(
                    {f"proxy_{k}": v for k, v in proxy.stats.items() if k.startswith("fault_")}
                )
                dev.cleanup()
                proxy.stop()
            for u in self.users.values():
                self.stats.update({f"op_{k}": v for k, v in u.ops.items()})

    def step(self) -> None:
        actions = {
            "edit": 6.0,
            "concurrent": 0.6,
            "wait": 3.0,
            "offline": 0.4,
            "cut": 0.4,
            "stall": 0.2,
            "kill": 0.35,
            "server": 0.15 if self.restarts_left else 0.0,
        }
        action = self.rng.choices(list(actions), list(actions.values()))[0]
        getattr(self, f"_do_{action}")()

    def _do_edit(self) -> None:
        name = self.rng.choice(DEVICES)
        op, paths = self.users[name].random_op()
        self.note(f"{name} user: {op} {paths}")

    def _do_concurrent(self) -> None:
        a, b = self.rng.sample(DEVICES, 2)
        files = sorted(p for p, v in snapshot(self.devices[a].folder).items() if v[0] == "file")
        path = self.rng.choice(files) if files else "shared.txt"
        for name in (a, b):
            with contextlib.suppress(OSError):
                self.users[name].write(path)
        self.stats["op_concurrent_edit"] += 1
        self.note(f"{a}+{b} concurrent edit of {path}")

    def _do_wait(self) -> None:
        time.sleep(self.rng.uniform(0.0, 0.4))

    def _do_offline(self) -> None:
        name = self.rng.choice(DEVICES)
        self.proxies[name].set("drop")
        self.heal_at[name] = self.rng.randrange(2, 10)
        self.stats["fault_offline"] += 1
        self.note(f"{name} offline")

    def _do_cut(self) -> None:
        name = self.rng.choice(DEVICES)
        key, note = arm_cut(self.rng, self.proxies[name])
        self.stats[key] += 1
        self.note(f"{name} {note}")

    def _do_stall(self) -> None:
        name = self.rng.choice(DEVICES)
        self.proxies[name].set(self.rng.choice(["stall", "delay"]), delay=0.05)
        self.heal_at[name] = self.rng.randrange(1, 5)
        self.stats["fault_stall_or_delay"] += 1
        self.note(f"{name} network stalls or slows")

    def _do_kill(self) -> None:
        alive = [n for n in DEVICES if self.devices[n].daemon_alive()]
        if not alive:
            return
        name = self.rng.choice(alive)
        self.devices[name].kill9()
        self.stats["crash_kill9"] += 1
        self.note(f"{name} kill -9")
        # what a killed daemon leaves visible must be whole files someone wrote
        for path, item in snapshot(self.devices[name].folder).items():
            if item[0] == "file" and key_of(item[1]) not in self.ledger.ever:
                raise AssertionError(f"{name}: partial file {path} visible after kill -9")
        self.stats["invariant_checks"] += 1
        self.revive_at[name] = self.rng.randrange(1, 6)

    def _do_server(self) -> None:
        self.restarts_left -= 1
        key, note = restart_server(self.rng, self.server)
        self.stats[key] += 1
        self.note(note)

    def housekeeping(self, step: int) -> None:
        for table, act in ((self.heal_at, self._heal), (self.revive_at, self._revive)):
            for name in list(table):
                table[name] -= 1
                if table[name] <= 0:
                    del table[name]
                    act(name)

    def _heal(self, name: str) -> None:
        self.proxies[name].heal()
        self.note(f"{name} network back")

    def _revive(self, name: str) -> None:
        self.devices[name].start()
        self.stats["restarts"] += 1
        self.note(f"{name} restarted")

    def quiesce(self) -> None:
        self.note("quiesce")
        for name in DEVICES:
            self.proxies[name].heal()
            if not self.devices[name].daemon_alive():
                self._revive(name)
        self.heal_at.clear()
        self.revive_at.clear()
        converge(*self.devices.values(), timeout=180)


def _namespace(dev: DeviceProc) -> int:
    import json

    return int(json.loads((dev.home / "config.json").read_text())["namespace"])
