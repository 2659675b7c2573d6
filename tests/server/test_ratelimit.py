"""Failed logins and bad tokens are rate-limited per client address (429 + Retry-After)."""

from __future__ import annotations

import httpx

from tests.support.server import ServerProc, login


def _login(server: ServerProc, user: str, password: str) -> httpx.Response:
    return httpx.post(
        server.url + "/v1/login",
        json={"user": user, "password": password, "device": "d"},
        timeout=30,
    )


def test_failed_logins_lock_that_user_name_out_then_a_correct_password_fails_too(server):
    server.adduser("victim")
    server.adduser("bystander")
    codes = [_login(server, "victim", f"guess{i}").status_code for i in range(10)]
    assert codes == [401] * 10
    locked = _login(server, "victim", "correct horse")
    assert locked.status_code == 429
    assert locked.json()["error"] == "too_many_attempts"
    assert 1 <= int(locked.headers["Retry-After"]) <= 60
    assert locked.json()["retry_after"] == int(locked.headers["Retry-After"])
    # Another user from the same address is not locked out by someone else's failures.
    assert _login(server, "bystander", "correct horse").status_code == 200


def test_unknown_tokens_are_refused_with_429_after_too_many(tmp_path):
    srv = ServerProc(tmp_path / "data").start()
    try:
        srv.adduser("u")
        good = login(srv, "u")
        bad = httpx.Client(base_url=srv.url, headers={"Authorization": "Bearer sdt_nope"})
        codes = [bad.get("/v1/me").status_code for _ in range(61)]
        assert codes[:60] == [401] * 60
        assert codes[60] == 429
        assert "Retry-After" in bad.get("/v1/me").headers
        # A valid token from the same address is also held back while the address is over:
        # a brute-forcer cannot tell a hit from a miss.
        assert good.client.get("/v1/me").status_code == 429
    finally:
        srv.stop()
