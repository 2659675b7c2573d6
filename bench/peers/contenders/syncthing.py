"""Syncthing (Debian's package): two instances in temp homes, each dialling the other at a
static 127.0.0.1 address through a counting proxy; discovery, relays, NAT traversal,
usage and crash reporting and upgrades off. `delay` sets the folder's fsWatcherDelayS
(None: Syncthing's default, 10 s)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx

from bench.peers.contenders.base import Contender, Wire, free_port, poll
from bench.peers.procs import children_of
from tests.support.server import stop_process

FOLDER = "bench"
API_KEY = "syncd-bench-peers"
OPTIONS = {
    "globalAnnounceEnabled": "false",
    "localAnnounceEnabled": "false",
    "relaysEnabled": "false",
    "natEnabled": "false",
    "urAccepted": "-1",
    "crashReportingEnabled": "false",
    "autoUpgradeIntervalH": "0",
    "startBrowser": "false",
    # Syncthing lowers its own CPU priority by default; on a machine shared with other
    # work that would slow it for reasons that are not its own, so it runs at normal
    # priority like the other contenders.
    "setLowPriority": "false",
}


class Instance:
    def __init__(self, home: Path, folder: Path) -> None:
        self.home = home
        self.folder = folder
        self.listen = free_port()
        self.gui = free_port()
        self.proc: subprocess.Popen | None = None
        out = subprocess.run(
            ["syncthing", "generate", f"--home={home}", "--no-default-folder"],
            capture_output=True,
            text=True,
            check=True,
        )
        found = re.search(r"Device ID: (\S+)", out.stdout + out.stderr)
        if not found:
            raise RuntimeError(f"syncthing generate printed no device id:\n{out.stderr}")
        self.device_id = found.group(1)
        self.api = httpx.Client(
            base_url=f"http://127.0.0.1:{self.gui}", headers={"X-API-Key": API_KEY}, timeout=30
        )

    def configure(self, peer: Instance, peer_port: int, delay: int | None) -> None:
        path = self.home / "config.xml"
        tree = ET.parse(path)
        root = tree.getroot()
        opts = root.find("options")
        assert opts is not None
        for key, value in OPTIONS.items():
            el = opts.find(key)
            if el is None:
                el = ET.SubElement(opts, key)
            el.text = value
        listen = opts.find("listenAddress")
        assert listen is not None
        listen.text = f"tcp://127.0.0.1:{self.listen}"
        gui = root.find("gui")
        assert gui is not None
        gui.find("address").text = f"127.0.0.1:{self.gui}"  # type: ignore[union-attr]
        gui.find("apikey").text = API_KEY  # type: ignore[union-attr]
        template = root.find("defaults/device")
        assert template is not None
        other = ET.fromstring(ET.tostring(template))
        other.set("id", peer.device_id)
        other.set("name", peer.home.name)
        other.find("address").text = f"tcp://127.0.0.1:{peer_port}"  # type: ignore[union-attr]
        root.insert(0, other)
        folder = ET.fromstring(ET.tostring(root.find("defaults/folder")))  # type: ignore[arg-type]
        folder.set("id", FOLDER)
        folder.set("label", FOLDER)
        folder.set("path", str(self.folder))
        folder.set("fsWatcherEnabled", "true")
        if delay is not None:
            folder.set("fsWatcherDelayS", str(delay))
        for dev in folder.findall("device"):
            folder.remove(dev)
        for dev_id in (self.device_id, peer.device_id):
            ET.SubElement(folder, "device", id=dev_id, introducedBy="")
        root.insert(0, folder)
        tree.write(path)
        (self.folder / ".stfolder").mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        log = (self.home / "syncthing.out").open("ab")
        env = {**os.environ, "STNODEFAULTFOLDER": "1", "STNOUPGRADE": "1"}
        self.proc = subprocess.Popen(
            [
                *("syncthing", "serve", f"--home={self.home}", "--no-browser", "--no-restart"),
                *("--no-upgrade", f"--logfile={self.home / 'syncthing.log'}"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        poll(self._answers, f"syncthing {self.home.name} REST API", 60)

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"syncthing {self.home.name} exited; see {self.home}")
        try:
            return self.api.get("/rest/system/ping").status_code == 200
        except httpx.HTTPError:
            return False

    def get(self, path: str, **params: str) -> dict:
        r = self.api.get(path, params=params)
        r.raise_for_status()
        return r.json()

    def connected(self, peer: Instance) -> bool:
        conns = self.get("/rest/system/connections")["connections"]
        return bool(conns.get(peer.device_id, {}).get("connected"))

    def in_sync(self, peer: Instance) -> bool:
        st = self.get("/rest/db/status", folder=FOLDER)
        if st.get("state") != "idle" or st.get("needTotalItems", 0) != 0:
            return False
        done = self.get("/rest/db/completion", folder=FOLDER, device=peer.device_id)
        return done.get("completion") == 100 and done.get("needItems", 0) == 0

    def last_scan(self) -> str:
        return self.get("/rest/stats/folder").get(FOLDER, {}).get("lastScan", "")

    def stop(self) -> None:
        stop_process(self.proc, 20)
        self.proc = None


class Syncthing(Contender):
    def __init__(self, delay: int | None) -> None:
        super().__init__()
        self.delay = delay
        self.name = "syncthing" if delay is None else f"syncthing-{delay}s"
        self.label = "Syncthing (10 s)" if delay is None else f"Syncthing ({delay} s)"
        self.sa: Instance | None = None
        self.sb: Instance | None = None
        if delay is None:
            # Its 10 s watcher delay makes every change cost ~6-10 s: in the quick mode
            # (a correctness smoke run of seconds) it proves its setup on scenario 1 only;
            # the 1 s instance runs the same code over every scenario.
            self.quick_scenarios = {"1"}

    def missing(self) -> str | None:
        return None if shutil.which("syncthing") else "no `syncthing` (apt-get install syncthing)"

    def version(self) -> str:
        out = subprocess.run(["syncthing", "--version"], capture_output=True, text=True)
        return out.stdout.split(" (")[0].strip()

    def _start(self) -> None:
        assert self.base is not None
        self.sa = Instance(self.base / "home-a", self.a)
        self.sb = Instance(self.base / "home-b", self.b)
        self.pa = self.proxy(self.sa.listen, "to A")  # B dials A through this one
        self.pb = self.proxy(self.sb.listen, "to B")  # A dials B through this one
        self.sa.configure(self.sb, self.pb.port, self.delay)
        self.sb.configure(self.sa, self.pa.port, self.delay)
        self.sa.start()
        self.sb.start()
        poll(lambda: self.sa.connected(self.sb), "syncthing A and B connected", 120)
        poll(self.settled, "syncthing A and B idle", 120)

    def _stop(self) -> None:
        for inst in (self.sa, self.sb):
            if inst is not None:
                inst.stop()
                inst.api.close()

    def roots(self) -> list[int]:
        return [pid for pids in self.daemons().values() for pid in pids]

    def daemons(self) -> dict[str, list[int]]:
        """Each instance is a monitor process and the syncthing process it runs (even with
        --no-restart, in this version): both count."""
        return {
            n: [i.proc.pid, *sorted(children_of({i.proc.pid}))]
            for n, i in (("A", self.sa), ("B", self.sb))
            if i and i.proc
        }

    def wire(self) -> Wire:
        to_a, to_b = self.pa.snapshot(), self.pb.snapshot()
        sent_by_a = to_a.outbound + to_b.inbound
        return Wire(up=sent_by_a, down=sent_by_a, total=to_a.total + to_b.total)

    def settled(self) -> bool:
        assert self.sa is not None and self.sb is not None
        return self.sa.in_sync(self.sb) and self.sb.in_sync(self.sa)

    def restart_a(self, timeout: float) -> float:
        """Up to date: A has rescanned its folder, is connected to B and needs nothing."""
        sa, sb = self.sa, self.sb
        assert sa is not None and sb is not None
        before = sa.last_scan()
        sa.stop()
        start = time.perf_counter()
        sa.start()

        def up_to_date() -> bool:
            return sa.last_scan() != before and sa.connected(sb) and sa.in_sync(sb)

        poll(up_to_date, "syncthing A up to date after restart", timeout, interval=0.02)
        return time.perf_counter() - start
