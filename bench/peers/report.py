"""Turns samples into the results document (peers.json), the table, and the targets."""

from __future__ import annotations

import statistics
from dataclasses import asdict

from bench.peers.measure import Sample
from bench.peers.scenarios import QUICK_SKIP, TITLES, IdleResult, Results, Sizes

SYNCD = "syncd"


def summarize(samples: list[Sample]) -> dict:
    secs = [s.seconds for s in samples]
    med = statistics.median

    def mid(key: str) -> float:
        return med([getattr(s, key) for s in samples])

    extra_keys = samples[0].extra.keys() if samples else ()
    return {
        "runs": len(samples),
        "seconds": {"median": med(secs), "min": min(secs), "max": max(secs), "all": secs},
        "up": mid("up"),
        "down": mid("down"),
        "wire": mid("wire"),
        "cpu": mid("cpu"),
        "rss": mid("rss"),
        "extra": {k: med([s.extra[k] for s in samples]) for k in extra_keys},
    }


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def build(
    *,
    meta: dict,
    contenders: dict[str, dict],
    results: Results,
    failed: dict[str, dict[str, str]],
    idle: dict[str, IdleResult | str],
    sizes: Sizes,
) -> dict:
    doc: dict = {"meta": meta, "contenders": contenders, "scenarios": {}, "idle": {}}
    for sid in [s for s in TITLES if s != "8"]:
        rows: dict[str, dict] = {}
        for name in contenders:
            if contenders[name]["status"] != "ran":
                rows[name] = {contenders[name]["status"]: contenders[name]["reason"]}
            elif failed.get(sid, {}).get(name) == QUICK_SKIP:
                rows[name] = {"skipped": QUICK_SKIP}
            elif name in failed.get(sid, {}):
                rows[name] = {"failed": failed[sid][name]}
            elif results.get(sid, {}).get(name):
                rows[name] = summarize(results[sid][name])
        ratios = {}
        me = rows.get(SYNCD, {})
        for name, row in rows.items():
            if name != SYNCD and "seconds" in row and "seconds" in me:
                ratios[name] = {
                    "seconds": _ratio(me["seconds"]["median"], row["seconds"]["median"]),
                    "up": _ratio(me["up"], row["up"]),
                    "cpu": _ratio(me["cpu"], row["cpu"]),
                    "rss": _ratio(me["rss"], row["rss"]),
                }
        doc["scenarios"][sid] = {"title": TITLES[sid], "results": rows, "ratios": ratios}
    for name in contenders:
        got = idle.get(name)
        if contenders[name]["status"] != "ran":
            doc["idle"][name] = {contenders[name]["status"]: contenders[name]["reason"]}
        elif isinstance(got, IdleResult):
            doc["idle"][name] = {
                **asdict(got),
                "restart_median": statistics.median(got.restart),
            }
        elif isinstance(got, str):
            doc["idle"][name] = {"failed": got}
        else:
            doc["idle"][name] = {"skipped": QUICK_SKIP if sizes.is_quick else "not run"}
    doc["targets"] = targets(doc, sizes)
    return doc


def _med(doc: dict, sid: str, name: str) -> float | None:
    row = doc["scenarios"].get(sid, {}).get("results", {}).get(name, {})
    return row["seconds"]["median"] if "seconds" in row else None


def _get(doc: dict, sid: str, name: str, key: str) -> float | None:
    row = doc["scenarios"].get(sid, {}).get("results", {}).get(name, {})
    if key.startswith("extra."):
        return row.get("extra", {}).get(key[6:])
    return row.get(key)


def _check(text: str, ok: bool | None, figures: str) -> dict:
    return {"target": text, "met": ok, "figures": figures}


def targets(doc: dict, sizes: Sizes) -> list[dict]:
    out: list[dict] = []
    me, st, rs = SYNCD, "syncthing", "rsync"
    s1, st1 = _med(doc, "1", me), _med(doc, "1", st)
    out.append(
        _check(
            "(1) median <= 250 ms",
            None if s1 is None else s1 <= 0.25,
            "n/a" if s1 is None else f"{s1 * 1000:.0f} ms",
        )
    )
    ok = None if s1 is None or st1 is None else st1 / s1 >= 25
    out.append(
        _check(
            "(1) >= 25x faster than Syncthing (default delay)",
            ok,
            "n/a" if ok is None else f"{st1 / s1:.1f}x ({st1 * 1000:.0f} ms vs {s1 * 1000:.0f} ms)",
        )
    )
    for sid in ("3", "4"):
        up = _get(doc, sid, me, "up")
        peers = {n: _get(doc, sid, n, "up") for n in ("syncthing", "syncthing-1s")}
        peers = {n: v for n, v in peers.items() if v is not None}
        ok = None if up is None or not peers else all(up <= v for v in peers.values())
        rsync_up = _get(doc, sid, rs, "up")
        figs = f"syncd {up or 0:,.0f} B; " + ", ".join(f"{n} {v:,.0f} B" for n, v in peers.items())
        figs += f"; rsync {rsync_up:,.0f} B" if rsync_up is not None else ""
        out.append(_check(f"({sid}) bytes uploaded by A <= Syncthing's", ok, figs))
        mine, theirs = _med(doc, sid, me), _med(doc, sid, rs)
        ok = None if mine is None or theirs is None else mine <= 2 * theirs
        out.append(
            _check(
                f"({sid}) time within 2x of rsync's",
                ok,
                "n/a" if ok is None else f"{mine:.2f} s vs {theirs:.2f} s ({mine / theirs:.2f}x)",
            )
        )
    n = sizes.many
    rate = {k: (n / v if (v := _med(doc, "5", k)) else None) for k in (me, rs, st)}
    ok = None if rate[me] is None or rate[rs] is None else rate[me] >= rate[rs]
    figs = ", ".join(f"{k} {v:.0f} files/s" for k, v in rate.items() if v)
    out.append(_check("(5) files/s >= rsync's", ok, figs))
    ok = None if rate[me] is None or rate[st] is None else rate[me] >= 5 * rate[st]
    out.append(_check("(5) files/s >= 5x Syncthing's default", ok, figs))
    for sid, size in (("6", sizes.rename_files * sizes.rename_bytes), ("7", sizes.big)):
        content = _get(doc, sid, me, "extra.content_up")
        ok = None if content is None else content < 0.01 * size
        out.append(
            _check(
                f"({sid}) content bytes < 1% of the data",
                ok,
                "n/a"
                if content is None
                else f"{content:,.0f} B of {size:,} ({content / size:.4%})",
            )
        )
    mine, theirs = doc["idle"].get(me, {}), doc["idle"].get(st, {})
    if "rss" in mine and "rss" in theirs:
        a, b = max(mine["rss"].values()), max(theirs["rss"].values())
        out.append(
            _check(
                "(8) idle RSS <= Syncthing's",
                a <= b,
                f"syncd {a / 2**20:.0f} MiB vs Syncthing {b / 2**20:.0f} MiB (largest daemon)",
            )
        )
    else:
        out.append(_check("(8) idle RSS <= Syncthing's", None, "n/a"))
    if "cpu" in mine:
        worst = max(mine["cpu"].values())
        out.append(_check("(8) idle CPU < 1% of a core", worst < 0.01, f"{worst:.3%} of a core"))
        rst = mine["restart_median"]
        out.append(_check("(8) restart to up to date < 5 s", rst < 5, f"{rst:.2f} s"))
    return out


# -- text ----------------------------------------------------------------------------
def _b(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def _s(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def _why(row: dict) -> str:
    for key in ("missing", "failed", "skipped"):
        if key in row:
            return f"{key}: {row[key]}"
    return "no result"


def _x(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}"


def table_rows(doc: dict) -> list[list[str]]:
    """Header + one row per scenario and contender."""
    labels = {n: c["label"] for n, c in doc["contenders"].items()}
    head = ["#", "contender", "seconds median [min-max]", "A sent", "B got", "wire"]
    head += ["CPU s", "peak RSS", "syncd/this: time", "bytes", "CPU", "RSS"]
    rows = [head]
    for sid, sc in doc["scenarios"].items():
        for name, row in sc["results"].items():
            if "seconds" not in row:
                rows.append([sid, labels[name], _why(row)])
                continue
            sec = row["seconds"]
            r = sc["ratios"].get(name, {})
            extra = row["extra"]
            up = _b(row["up"]) + (
                f" ({_b(extra['content_up'])} content)" if "content_up" in extra else ""
            )
            down = _b(row["down"]) + (
                f" ({_b(extra['content_down'])} content)" if "content_down" in extra else ""
            )
            rows.append(
                [
                    sid,
                    labels[name],
                    f"{_s(sec['median'])} [{_s(sec['min'])}-{_s(sec['max'])}]",
                    up,
                    down,
                    _b(row["wire"]),
                    f"{row['cpu']:.2f}",
                    _b(row["rss"]),
                    *(
                        [_x(r.get("seconds")), _x(r.get("up")), _x(r.get("cpu")), _x(r.get("rss"))]
                        if r
                        else ["", "", "", ""]
                    ),
                ]
            )
    return rows


def idle_rows(doc: dict) -> list[list[str]]:
    labels = {n: c["label"] for n, c in doc["contenders"].items()}
    rows = [
        [
            "contender",
            "initial copy",
            "idle RSS per daemon",
            "idle CPU per daemon",
            "restart to up to date median [min-max]",
        ]
    ]
    for name, row in doc["idle"].items():
        if "rss" not in row:
            rows.append([labels[name], _why(row)])
            continue
        rst = row["restart"]
        rows.append(
            [
                labels[name],
                _s(row["sync_seconds"]),
                ", ".join(f"{k} {_b(v)}" for k, v in row["rss"].items()),
                ", ".join(f"{k} {v:.3%}" for k, v in row["cpu"].items()),
                f"{_s(row['restart_median'])} [{_s(min(rst))}-{_s(max(rst))}]",
            ]
        )
    return rows


def text_table(rows: list[list[str]]) -> str:
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    cols = [max(len(r[i]) for r in rows) for i in range(width)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, cols, strict=True)).rstrip() for r in rows
    )


def md_table(rows: list[list[str]]) -> str:
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def target_lines(doc: dict) -> list[str]:
    mark = {True: "met", False: "MISSED", None: "not measured"}
    return [f"{mark[t['met']]:>12}  {t['target']}: {t['figures']}" for t in doc["targets"]]


def markdown(doc: dict) -> str:
    m = doc["meta"]
    parts = [
        f"# syncd against Syncthing and rsync ({'quick' if m['quick'] else 'full'} run,"
        f" {m['date']})",
        "",
        f"Machine: {m['machine']}. Versions: "
        + "; ".join(f"{c['label']} {c.get('version', '')}" for c in doc["contenders"].values())
        + ".",
        "",
        'Bytes are counted by a TCP proxy in front of every listener. For syncd, "A sent"'
        " is A's upload to the server and \"B got\" B's download from it (content: chunk"
        " bytes only); for the peer-to-peer tools both are the bytes A sent. Ratios are"
        " syncd's figure divided by the contender's (below 1: syncd is better).",
        "",
        "## Scenarios 1-7",
        "",
        md_table(table_rows(doc)),
        "",
        "Scenarios: " + "; ".join(f"({k}) {v}" for k, v in TITLES.items()) + ".",
        "",
        "## Scenario 8: idle over a large folder",
        "",
        md_table(idle_rows(doc)),
        "",
        "## Targets",
        "",
        *[f"- {line.strip()}" for line in target_lines(doc)],
        "",
    ]
    return "\n".join(parts)


if __name__ == "__main__":  # python -m bench.peers.report peers.json: re-render its .md
    import json
    import sys
    from pathlib import Path

    src = Path(sys.argv[1])
    src.with_suffix(".md").write_text(markdown(json.loads(src.read_text())))
