"""Per-user storage quota: distinct chunks per namespace; 507 with a clear message."""

from __future__ import annotations

import os

import blake3
import pytest

from syncd.server.quota import format_bytes, parse_size
from syncd.wire import BATCH_CONTENT_TYPE, encode_frames
from tests.support.devices import DeviceProc, wait_for
from tests.support.server import ServerProc, login


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1024", 1024), ("64KiB", 65536), ("1.5 MiB", 1572864), ("10GB", 10**10), ("2tib", 2 << 40)],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "ten", "5 parsecs", "-1KiB"])
def test_parse_size_refuses_nonsense(text):
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(64 * 1024) == "64.0 KiB"


@pytest.fixture(scope="module")
def small_quota(tmp_path_factory):
    srv = ServerProc(tmp_path_factory.mktemp("quota") / "data", extra_args=["--quota", "40KiB"])
    yield srv.start()
    srv.stop()


def _chunk(n: int) -> tuple[str, bytes]:
    data = os.urandom(n)
    return blake3.blake3(data).hexdigest(), data


def test_uploads_beyond_the_quota_are_refused_and_owned_chunks_cost_nothing(small_quota):
    small_quota.adduser("q1")
    s = login(small_quota, "q1")
    first = _chunk(15000)
    second = _chunk(15000)
    for cid, data in (first, second):
        assert s.client.put(s.ns_url(f"chunks/{cid}"), content=data).status_code == 200
    # Uploading a chunk the namespace already holds is free, even at the limit.
    assert s.client.put(s.ns_url(f"chunks/{first[0]}"), content=first[1]).status_code == 200
    third = _chunk(15000)
    r = s.client.put(s.ns_url(f"chunks/{third[0]}"), content=third[1])
    assert r.status_code == 507
    body = r.json()
    assert body["error"] == "quota_exceeded"
    assert "quota of 40.0 KiB exceeded" in body["message"]
    assert (body["limit"], body["used"], body["needed"]) == (40960, 30000, 15000)
    # A batch that would cross the limit stores nothing.
    batch = encode_frames([_chunk(6000), _chunk(6000)])
    r = s.client.post(
        s.ns_url("chunks"), content=batch, headers={"Content-Type": BATCH_CONTENT_TYPE}
    )
    assert r.status_code == 507
    assert s.client.post(s.ns_url("chunks/missing"), json={"ids": [third[0]]}).json() == {
        "missing": [third[0]]
    }


def test_quota_is_per_user(small_quota):
    for name in ("q2", "q3"):
        small_quota.adduser(name)
        s = login(small_quota, name)
        for cid, data in (_chunk(15000), _chunk(15000)):
            assert s.client.put(s.ns_url(f"chunks/{cid}"), content=data).status_code == 200


def test_daemon_reports_the_quota_and_keeps_the_rest_syncing(small_quota):
    small_quota.adduser("q4")
    dev = DeviceProc("qa", small_quota)
    dev.link("q4")
    dev.folder.mkdir(parents=True, exist_ok=True)
    (dev.folder / "small.txt").write_text("fits")
    (dev.folder / "big.bin").write_bytes(os.urandom(200_000))
    dev.start()
    try:

        def reported() -> bool:
            st = dev.status()
            text = str(st)
            return "quota" in text and st.get("state") == "error"

        wait_for(reported, "the daemon to report the quota")
        s = login(small_quota, "q4", device="check")
        entry = s.client.get(s.ns_url("entry"), params={"path": "small.txt"})
        assert entry.status_code == 200, (dev.status(), dev.output())
        assert not entry.json()["entry"]["deleted"]
        assert (dev.folder / "big.bin").stat().st_size == 200_000  # nothing lost locally
    finally:
        dev.stop()
