"""`syncd doctor`: the judgements (pure) and the whole report against a real server and
daemon — all good, a revoked token, the server down."""

from __future__ import annotations

import itertools
import json

from syncd.doctor import (
    MIN_SUGGESTED_WATCHES,
    check_inotify,
    count_dirs,
    disk_check,
    inotify_check,
    suggested_watches,
)
from tests.support.devices import DeviceProc, syncd
from tests.support.server import login

_users = itertools.count()
GB = 1000**3


def test_inotify_limit_against_the_folders_with_the_exact_fix():
    assert inotify_check(8192, 100).level == "ok"
    warn = inotify_check(8192, 5000)
    assert warn.level == "warn"
    full = inotify_check(8192, 9000)
    assert full.level == "fail" and "9,000 folders to watch, limit 8,192" in full.message
    assert full.fix.splitlines() == [
        f"sudo sysctl fs.inotify.max_user_watches={MIN_SUGGESTED_WATCHES}   # now; to keep it"
        " after a reboot:",
        f"echo fs.inotify.max_user_watches={MIN_SUGGESTED_WATCHES} | sudo tee "
        "/etc/sysctl.d/90-syncd-inotify.conf",
    ]
    assert suggested_watches(1_000_000) == 2_031_616  # twice, in steps of 64 Ki
    assert check_inotify(10, read=lambda: "4\n").level == "fail"
    assert check_inotify(10, read=lambda: "junk").level == "skip"


def test_free_disk_thresholds():
    assert disk_check(50 * 1000**2, 100 * GB, "/x").level == "fail"
    assert disk_check(GB // 2, 100 * GB, "/x").level == "warn"
    assert disk_check(4 * GB, 100 * GB, "/x").level == "warn"  # under 5 %
    ok = disk_check(20 * GB, 100 * GB, "/x")
    assert ok.level == "ok" and ok.message == "20.0 GB free of 100.0 GB on /x"


def test_folders_are_counted_without_the_state_folder(tmp_path):
    for d in ("a/b/c", "d", ".syncd/tmp"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "a/file.txt").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert count_dirs(tmp_path) == (5, [])  # the root, a, a/b, a/b/c, d


def doctor(device) -> tuple[int, dict[str, dict]]:
    out = syncd("doctor", "--json", home=device.home, check=False)
    return out.returncode, {c["name"]: c for c in json.loads(out.stdout)}


def test_doctor_against_a_real_server_and_daemon(server):
    user = f"doc{next(_users)}"
    server.adduser(user)
    device = DeviceProc("desk", server)
    try:
        device.link(user)
        device.start()
        code, checks = doctor(device)
        assert code == 0, checks
        assert {n: c["level"] for n, c in checks.items()} == {
            "config": "ok",
            "server": "ok",
            "token": "ok",
            "keyring": "warn",  # the tests run headless: the token is in a 0600 file
            "inotify": "ok",
            "disk": "ok",
            "permissions": "ok",
            "daemon": "ok",
        }
        assert "syncd link" in checks["keyring"]["fix"]
        text = syncd("doctor", home=device.home).stdout
        assert "✔ server" in text and text.rstrip().endswith("0 failed, 1 warnings.")

        cfg = json.loads((device.home / "config.json").read_text())
        admin = login(server, user, device="admin")
        admin.client.delete(f"/v1/devices/{cfg['device_id']}")
        code, checks = doctor(device)
        assert code == 1 and checks["token"]["level"] == "fail"
        assert "revoked" in checks["token"]["message"]
        assert checks["token"]["fix"].startswith("link again: syncd link")

        server.stop()
        code, checks = doctor(device)
        assert code == 1 and checks["server"]["level"] == "fail"
        assert "cannot reach" in checks["server"]["message"]
        assert checks["token"]["level"] == "skip"
        device.stop()
        out = syncd("doctor", home=device.home, check=False).stdout
        assert "! daemon       syncd is not running" in out and "fix: syncd start" in out
    finally:
        if server.proc is None:
            server.start()
        device.cleanup()


def test_doctor_on_an_unlinked_home_says_how_to_link(tmp_path):
    out = syncd("doctor", home=tmp_path / "new", check=False)
    assert out.returncode == 1
    assert "✘ config" in out.stdout and "syncd link URL --user NAME --folder PATH" in out.stdout
