"""--chunk-redirect: chunk downloads answered with a short-lived signed S3 URL (D9), only
after the namespace's own access is checked (D3); the client follows and verifies."""

from __future__ import annotations

import os

import httpx
import pytest

from syncd.transport.client import ServerClient
from tests.server.helpers import cid, put
from tests.support.server import ServerProc, login


@pytest.fixture(scope="module")
def redirecting(moto, tmp_path_factory):
    bucket = f"redirect-{os.urandom(3).hex()}"
    moto.create_bucket(bucket)
    extra = ["--blocks", moto.url(bucket), "--chunk-redirect", "60"]
    proc = ServerProc(tmp_path_factory.mktemp("redirect") / "data", extra_args=extra).start()
    yield proc
    proc.stop()


def test_chunk_get_redirects_to_a_signed_url_the_client_follows(redirecting):
    redirecting.adduser("r1")
    s = login(redirecting, "r1")
    data = os.urandom(10_000)
    put(s, data)
    r = s.client.get(s.ns_url(f"chunks/{cid(data)}"))
    assert r.status_code == 307
    location = r.headers["location"]
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=60" in location
    assert r.headers["etag"] == f'"{cid(data)}"'
    assert httpx.get(location).content == data  # no token needed: the URL is the grant
    client = ServerClient(redirecting.url, s.token)
    try:
        assert client.get_chunk(s.ns, cid(data)) == data
    finally:
        client.close()


def test_no_url_for_a_chunk_of_another_namespace(redirecting):
    redirecting.adduser("r2")
    redirecting.adduser("r3")
    owner, other = login(redirecting, "r2"), login(redirecting, "r3")
    data = os.urandom(5000)
    put(owner, data)
    r = other.client.get(other.ns_url(f"chunks/{cid(data)}"))
    assert r.status_code == 404
    assert "location" not in r.headers


def test_without_s3_the_option_changes_nothing(tmp_path):
    srv = ServerProc(tmp_path / "data", extra_args=["--chunk-redirect", "60"]).start()
    try:
        srv.adduser("plain")
        s = login(srv, "plain")
        data = os.urandom(3000)
        put(s, data)
        r = s.client.get(s.ns_url(f"chunks/{cid(data)}"))
        assert r.status_code == 200 and r.content == data
    finally:
        srv.stop()
