"""`/healthz` asks every backend for real and names the one that fails (503)."""

from __future__ import annotations

import os

import httpx

from deploy.services import Moto
from tests.server.helpers import cid
from tests.support.server import ServerProc, login


def test_every_backend_is_checked(server):
    r = httpx.get(server.url + "/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True
    assert set(body["backends"]) == {"meta", "blocks", "notify"}
    assert all(b["ok"] for b in body["backends"].values())
    assert "waiters" in body


def test_unknown_optional_backend_is_400(server):
    r = httpx.get(server.url + "/healthz?optional=cache")
    assert r.status_code == 400
    assert r.json()["error"] == "bad_request"


def test_s3_gone_is_503_naming_blocks_and_uploads_are_503_not_500(tmp_path):
    moto = Moto(tmp_path / "moto").start()
    moto.create_bucket("health")
    srv = ServerProc(tmp_path / "data", extra_args=["--blocks", moto.url("health")]).start()
    try:
        srv.adduser("h")
        s = login(srv, "h")
        assert httpx.get(srv.url + "/healthz").json()["backends"]["blocks"]["ok"] is True
        moto.stop()
        r = httpx.get(srv.url + "/healthz", timeout=30)
        assert r.status_code == 503
        assert r.json()["error"] == "unhealthy"
        assert r.json()["failed"] == ["blocks"]
        assert "s3://health/chunks" in r.json()["backends"]["blocks"]["error"]
        assert "moto" not in r.json()["message"]  # no credentials in what it tells
        data = os.urandom(3000)
        up = s.client.put(s.ns_url(f"chunks/{cid(data)}"), content=data)
        assert up.status_code == 503
        assert up.json()["error"] == "backend_unavailable"
        assert up.json()["backend"] == "blocks"
        assert "retry-after" in up.headers
    finally:
        srv.stop()
        moto.stop()
