"""Hostile paths and malformed requests always get a 4xx JSON error, never a 500."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.server.helpers import cid, put
from tests.support.server import login

HOSTILE_PATHS = [
    "",
    "/etc/passwd",
    "/",
    "..",
    "../escape",
    "a/../../b",
    "a/./b",
    ".",
    "a//b",
    "a/",
    "trailing/slash/",
    "nul\x00byte",
    "new\nline",
    "tab\there",
    "carriage\rreturn",
    "bell\x07",
    "esc\x1b[31m",
    "del\x7f",
    "c1\x85control",
    "back\\slash",
    "C:\\Windows\\system32",
    "x" * 256,
    "/".join(["d"] * 2049),
    "a/" + "y" * 300 + "/b",
    "cafe\u0301",  # NFD: e + combining acute
    "\ud800lone-surrogate",
]


@pytest.fixture(scope="module")
def shared(server):
    server.adduser("hostile-user")
    return login(server, "hostile-user")


@pytest.mark.parametrize("path", HOSTILE_PATHS, ids=range(len(HOSTILE_PATHS)))
def test_hostile_path_is_rejected_on_commit(shared, path):
    s = shared
    # ensure_ascii lets even a lone surrogate travel as a JSON escape
    body = json.dumps({"path": path, "action": "dir"}, ensure_ascii=True)
    r = s.client.post(
        s.ns_url("commit"), content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] in ("invalid_path", "bad_request")
    assert body["message"]


def test_hostile_paths_are_rejected_everywhere(new_user):
    s = new_user()
    put(s, b"q")
    for path in ["../x", "/abs", "a\x00b"]:
        for method, tail, kw in [
            ("GET", "list", {"params": {"path": path}}),
            ("GET", "history", {"params": {"path": path}}),
            ("GET", "entry", {"params": {"path": path}}),
            ("POST", "restore", {"json": {"path": path, "rev": 1}}),
            (
                "POST",
                "commit_batch",
                {
                    "json": {
                        "ops": [
                            {
                                "path": path,
                                "action": "file",
                                "size": 1,
                                "blocks": [{"id": cid(b"q"), "size": 1}],
                            }
                        ]
                    }
                },
            ),
        ]:
            r = s.client.request(method, s.ns_url(tail), **kw)
            assert r.status_code == 400, (path, tail, r.text)
    assert s.client.get(s.ns_url("tree")).json()["entries"] == []


def test_valid_unicode_names_are_accepted(new_user):
    s = new_user()
    for path in ["café", "日本語/ファイル.txt", "emoji 🎉.md", "spaces and (parens) [1].txt"]:
        r = s.client.post(s.ns_url("commit"), json={"path": path, "action": "dir"})
        assert r.status_code == 200, (path, r.text)


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"path": 5, "action": "dir"}',
        b'{"path": "a", "action": "explode"}',
        b'{"path": "a", "action": "dir", "surprise": 1}',
        b'{"path": "a", "action": "dir", "parent_rev": -1}',
        b'{"path": "a", "action": "file", "blocks": [{"id": "zz", "size": 1}]}',
        b"",
    ],
)
def test_malformed_json_is_400(shared, body):
    s = shared
    r = s.client.post(
        s.ns_url("commit"), content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "bad_request"


def test_unknown_routes_methods_and_namespaces(server, new_user):
    s = new_user()
    r = s.client.get("/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = s.client.delete(s.ns_url("tree"))
    assert r.status_code == 405
    assert s.client.get("/v1/ns/999999/tree").status_code == 403
    assert s.client.get("/v1/ns/not-a-number/tree").status_code == 400


def test_oversized_request_body_is_413(server, new_user):
    s = new_user()
    too_big = b"x" * (64 * 1024 * 1024 + 10)
    r = s.client.post(s.ns_url("chunks"), content=too_big)
    assert r.status_code == 413


def test_openapi_documents_the_api(server):
    spec = httpx.get(server.url + "/openapi.json").json()
    paths = set(spec["paths"])
    for p in [
        "/v1/login",
        "/v1/ns/{ns}/commit",
        "/v1/ns/{ns}/changes",
        "/v1/ns/{ns}/chunks/missing",
        "/v1/ns/{ns}/restore",
        "/v1/ns/{ns}/history",
        "/v1/devices",
    ]:
        assert p in paths
