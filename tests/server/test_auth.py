"""Users, login, device tokens and revocation over real HTTP."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.support.server import login


def test_login_gives_a_working_token_and_the_namespace(server, new_user):
    s = new_user("laptop")
    me = s.client.get("/v1/me").json()
    assert me["device"] == "laptop"
    assert me["namespace"] == s.ns
    assert set(me["chunking"]) == {"min", "avg", "max"}
    assert s.token.startswith("sdt_")


def test_wrong_password_and_unknown_user_are_401(server):
    server.adduser("alice-auth", "s3cret")
    for user, pw in [("alice-auth", "nope"), ("nobody-here", "s3cret")]:
        r = httpx.post(server.url + "/v1/login", json={"user": user, "password": pw, "device": "d"})
        assert r.status_code == 401
        assert r.json()["error"] == "unauthorized"


def test_missing_and_bad_tokens_are_401(server, new_user):
    s = new_user()
    assert httpx.get(server.url + "/v1/me").status_code == 401
    bad = httpx.get(server.url + "/v1/me", headers={"Authorization": "Bearer sdt_forged"})
    assert bad.status_code == 401
    assert bad.json()["message"] == "invalid or revoked token"
    assert httpx.get(server.url + f"/v1/ns/{s.ns}/tree").status_code == 401


def test_each_device_gets_its_own_token_and_revocation_is_immediate(server):
    server.adduser("bob-auth")
    phone = login(server, "bob-auth", device="phone")
    desk = login(server, "bob-auth", device="desk")
    assert phone.token != desk.token
    listed = desk.client.get("/v1/devices").json()["devices"]
    assert [d["name"] for d in listed] == ["phone", "desk"]
    assert [d["current"] for d in listed] == [False, True]

    assert desk.client.delete(f"/v1/devices/{phone.device_id}").status_code == 204
    r = phone.client.get("/v1/me")
    assert r.status_code == 401
    assert desk.client.get("/v1/me").status_code == 200
    revoked = desk.client.get("/v1/devices").json()["devices"][0]
    assert revoked["revoked"] is not None
    # revoking again, or a device of someone else, is a clear 404
    assert desk.client.delete(f"/v1/devices/{phone.device_id}").status_code == 404


def test_a_user_cannot_revoke_another_users_device(server, new_user):
    a, b = new_user(), new_user()
    assert b.client.delete(f"/v1/devices/{a.device_id}").status_code == 404
    assert a.client.get("/v1/me").status_code == 200


def test_passwords_are_stored_argon2_hashed_and_tokens_hashed(server):
    server.adduser("carol-auth", "plain-password-123")
    s = login(server, "carol-auth", password="plain-password-123")
    db = (server.data / "meta.sqlite3").read_bytes()
    wal = server.data / "meta.sqlite3-wal"
    blob = db + (wal.read_bytes() if wal.exists() else b"")
    assert b"plain-password-123" not in blob
    assert s.token.encode() not in blob
    assert b"$argon2id$" in blob


def test_adduser_refuses_a_duplicate_name(server):
    server.adduser("dave-auth")
    out = subprocess.run(
        [sys.executable, "-m", "syncd", "server", "adduser", "dave-auth"]  # noqa: RUF005
        + ["--data", str(server.data), "--password-stdin"],
        input="pw\n",
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert "already exists" in out.stderr
