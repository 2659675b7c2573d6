"""`syncd status --watch`: a live view with progress bars (rich) on a terminal; plain text
lines, or JSON lines with `--json`, when the output is not a terminal.

The view long-polls the daemon (`wait`: answered when the status changes, or after
`interval` seconds) and derives rate and ETA per direction from the bytes done over
the last seconds (display.RateMeter, fed the daemon's own clock).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from syncd.control import DaemonNotRunning, control_request
from syncd.display import (
    DIRECTIONS,
    RateMeter,
    clock,
    duration,
    human_size,
    plural,
    status_line,
    totals,
)
from syncd.errors import SyncdError

NOT_RUNNING = {"state": "not running"}
LABELS = {"up": "Uploading", "down": "Downloading"}
ARROWS = {"up": "↑", "down": "↓", "both": "⇅"}


def snapshots(
    sock: Path, interval: float, sleep: Callable[[float], None] = time.sleep
) -> Iterator[dict]:
    """Status snapshots as they change (and at least every `interval` s), for ever."""
    version = -1
    while True:
        try:
            snap = control_request(
                sock, "wait", timeout=interval + 10, since=version, seconds=interval
            )
        except (DaemonNotRunning, SyncdError):
            version = -1
            yield dict(NOT_RUNNING)
            sleep(interval)
            continue
        version = int(snap.get("version", -1))
        yield snap


@dataclass
class Rates:
    """Rate and ETA per direction, from successive snapshots."""

    meters: dict[str, RateMeter] = field(
        default_factory=lambda: {d: RateMeter() for d in DIRECTIONS}
    )

    def observe(self, snap: dict) -> dict[str, dict[str, float | None]]:
        now = float(snap.get("now") or time.time())
        out: dict[str, dict[str, float | None]] = {}
        for d in DIRECTIONS:
            t = totals(snap, (d,))
            meter = self.meters[d]
            meter.add(now, t.bytes_done)
            active = bool(t.files_total)  # nothing to do this way: no rate, no ETA
            out[d] = {
                "rate": meter.rate() if active else None,
                "eta": meter.eta(t.bytes_left) if active and t.bytes_total else None,
            }
        return out


def _rate_text(rate: float | None) -> str:
    return f"{human_size(int(rate))}/s" if rate else "-"


def _eta_text(eta: float | None) -> str:
    return "-" if eta is None else duration(eta)


def plain_line(snap: dict, derived: dict) -> str:
    """One line of the non-terminal view: time, status, then each active direction."""
    now = float(snap.get("now") or time.time())
    parts = [f"{clock(now, now)} {status_line(snap, now)}"]
    for d in DIRECTIONS:
        t = totals(snap, (d,))
        if not t.files_total:
            continue
        parts.append(
            f"{d} {t.files_done}/{t.files_total} files, {human_size(t.bytes_done)}"
            f"/{human_size(t.bytes_total)}, {_rate_text(derived[d]['rate'])}, "
            f"ETA {_eta_text(derived[d]['eta'])}"
        )
    return " | ".join(parts)


def json_record(snap: dict, derived: dict) -> dict:
    return {
        **snap,
        "rate": {d: v["rate"] for d, v in derived.items()},
        "eta": {d: v["eta"] for d, v in derived.items()},
    }


def rich_view(snap: dict, derived: dict) -> Any:
    """The terminal view: the status line, a bar per active direction, recent changes."""
    from rich.console import Group
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn
    from rich.text import Text

    now = float(snap.get("now") or time.time())
    progress = Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(bar_width=30),
        TextColumn("{task.fields[files]:>13}"),
        DownloadColumn(binary_units=False),
        TextColumn("{task.fields[rate]:>10}"),
        TextColumn("ETA {task.fields[eta]}"),
        expand=False,
    )
    initial = (snap.get("progress") or {}).get("phase") == "initial"
    for d in DIRECTIONS:
        t = totals(snap, (d,))
        if not t.files_total:
            continue
        progress.add_task(
            f"Initial sync {ARROWS[d]}" if initial else LABELS[d],
            total=max(t.bytes_total, 1),
            completed=t.bytes_done if t.bytes_total else 1,
            files=f"{t.files_done}/{plural(t.files_total, 'file')}",
            rate=_rate_text(derived[d]["rate"]),
            eta=_eta_text(derived[d]["eta"]),
        )
    parts: list[Any] = [Text(status_line(snap, now), style="bold")]
    if progress.tasks:
        parts.append(progress)
    recent = snap.get("recent") or []
    if recent:
        parts.append(Text("Recent changes:", style="dim"))
        for change in recent[:5]:
            when = clock(change.get("time") or now, now)
            arrow = ARROWS.get(change.get("direction", ""), " ")
            parts.append(Text(f"  {when} {arrow} {change.get('action')} {change.get('path')}"))
    if snap.get("folder"):
        parts.append(Text(f"Folder: {snap['folder']}", style="dim"))
    return Group(*parts)


def watch(
    sock: Path, out: IO[str], *, tty: bool, as_json: bool, interval: float, until_idle: bool
) -> None:
    """Run the view until interrupted (or, with `until_idle`, until up to date)."""
    rates = Rates()
    if tty and not as_json:
        from rich.console import Console
        from rich.live import Live

        with Live(console=Console(file=out), auto_refresh=False, transient=False) as live:
            for snap in snapshots(sock, interval):
                live.update(rich_view(snap, rates.observe(snap)), refresh=True)
                if until_idle and snap.get("state") == "up to date":
                    return
        return
    last = ""
    last_at = 0.0
    for snap in snapshots(sock, interval):
        derived = rates.observe(snap)
        if as_json:
            out.write(json.dumps(json_record(snap, derived), sort_keys=True) + "\n")
        else:
            line = plain_line(snap, derived)
            text = line.partition(" ")[2]  # without the time
            now = time.monotonic()
            if text != last or (snap.get("state") == "syncing" and now - last_at >= interval):
                out.write(line + "\n")
                last, last_at = text, now
        out.flush()
        if until_idle and snap.get("state") == "up to date":
            return
