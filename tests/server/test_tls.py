"""TLS end to end: `syncd server --tls-cert/--tls-key`, `syncd link --ca` for a private CA."""

from __future__ import annotations

import httpx
import pytest
import trustme

from tests.support.devices import DeviceProc, converge, syncd
from tests.support.server import ServerProc


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    where = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(str(where / "server.pem"))
    cert.private_key_pem.write_to_path(str(where / "server.key"))
    ca.cert_pem.write_to_path(str(where / "ca.pem"))
    tls_args = ["--tls-cert", str(where / "server.pem"), "--tls-key", str(where / "server.key")]
    srv = ServerProc(
        where / "data",
        extra_args=tls_args,
        ca=str(where / "ca.pem"),
    )
    srv.start()
    srv.adduser("tls")
    yield srv
    srv.stop()


def test_the_server_speaks_only_tls(tls_server):
    assert tls_server.url.startswith("https://")
    with pytest.raises(httpx.TransportError):
        httpx.get(tls_server.url.replace("https://", "http://") + "/healthz", timeout=5)


def test_link_refuses_an_untrusted_certificate_and_says_what_to_do(tls_server, tmp_path):
    out = syncd(
        "link", tls_server.url, "--user", "tls", "--folder", str(tmp_path / "f"),
        "--password-stdin", home=tmp_path / "home", stdin="correct horse\n", check=False,
    )  # fmt: skip
    assert out.returncode != 0
    assert "TLS certificate is not trusted" in out.stderr
    assert "--ca" in out.stderr
    assert not (tmp_path / "home" / "config.json").exists()


def test_two_devices_sync_over_tls_with_a_private_ca(tls_server):
    a, b = DeviceProc("tls-a", tls_server), DeviceProc("tls-b", tls_server)
    for dev in (a, b):
        dev.link("tls")
        dev.start()
    try:
        (a.folder / "hello.txt").write_text("over TLS")
        tree = converge(a, b)
        assert tree["hello.txt"][1] == b"over TLS"
    finally:
        a.stop()
        b.stop()
