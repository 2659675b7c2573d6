"""Schemathesis against the real server's /openapi.json: no 5xx, responses match the schema.

Every operation gets generated requests (valid and invalid) with a real device token;
requests that name a namespace use the token's own namespace half of the time, so the
handlers behind the access check are exercised too, not only the 403.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis.specs.openapi.checks import ignored_auth

from tests.support.server import ServerProc, Session, login

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    proc = ServerProc(tmp_path_factory.mktemp("fuzz") / "data").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def fuzz_session(fuzz_server: ServerProc) -> Session:
    fuzz_server.adduser("fuzzer")
    return login(fuzz_server, "fuzzer", device="fuzz")


def _served_schema() -> dict:
    """The schema exactly as a server process serves it (fetched once, at collection)."""
    proc = ServerProc(Path(tempfile.mkdtemp(prefix="syncd-openapi-")) / "data").start()
    try:
        return httpx.get(proc.url + "/openapi.json", timeout=30).json()
    finally:
        proc.stop()
        shutil.rmtree(proc.data.parent, ignore_errors=True)


# Loaded at import: schemathesis' lazy fixture loader does not support pytest 9 yet.
schema = schemathesis.openapi.from_dict(_served_schema())


@schema.parametrize()
@hypothesis.settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
)
def test_no_server_errors_and_responses_match_the_schema(
    case: schemathesis.Case, fuzz_server: ServerProc, fuzz_session: Session
) -> None:
    ns = (case.path_parameters or {}).get("ns")
    if isinstance(ns, int) and ns % 2:
        case.path_parameters["ns"] = fuzz_session.ns
    case.call_and_validate(
        base_url=fuzz_server.url,
        headers={"Authorization": f"Bearer {fuzz_session.token}"},
        excluded_checks=[ignored_auth],
        timeout=30,
    )
