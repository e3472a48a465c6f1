"""The client reaches ilert as curl would: trusting the system's CA store or SSL_CERT_FILE /
SSL_CERT_DIR, through the proxy of HTTPS_PROXY / HTTP_PROXY unless NO_PROXY covers the host.

Real parts only: the sandbox app served over TLS with a certificate of a CA made for the
session (tools/kafka/tls.py, openssl), and a real HTTP proxy (tests/http_proxy.py).
"""

from __future__ import annotations

import json
import logging
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import tls
from aiohttp.test_utils import TestClient, TestServer

from http_proxy import HttpProxy
from ilagent.ilert import IlertClient, Outcome
from ilagent.logs import hide_secrets
from ilagent.sandbox import SandboxConfig, build_app

KEY = "il1apiPROXY0000001"
EVENT = json.dumps({"integrationKey": KEY, "eventType": "ALERT", "summary": "via"}).encode()
PROXY_VARIABLES = ("https_proxy", "http_proxy", "no_proxy")
USER, PASSWORD = "ilagent", "pr0xy-s3cret-passw0rd"


@pytest.fixture(autouse=True)
def no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the proxy variables it means; none comes from the machine."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private CA (``ca.pem``) and its certificate for 127.0.0.1 (``broker.pem``, with key)."""
    return tls.make_certificates(tmp_path_factory.mktemp("ca"))


@pytest.fixture
async def tls_sandbox(ca: Path) -> AsyncIterator[TestClient[Any, Any]]:
    """The sandbox app over TLS with that certificate, and a client for its JSON API that
    trusts the CA."""
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(ca / "broker.pem")
    server = TestServer(build_app(SandboxConfig()))
    await server.start_server(ssl=served)
    trusting = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=ca / "ca.pem"))
    async with TestClient(server, connector=trusting) as client:
        yield client


def trust(monkeypatch: pytest.MonkeyPatch, variable: str | None, ca: Path,
          tmp_path: Path) -> None:
    """Only the system's CA store, plus ``ca`` by ``variable`` (a file, or a hashed directory)."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    if variable == "SSL_CERT_FILE":
        monkeypatch.setenv(variable, str(ca / "ca.pem"))
    elif variable == "SSL_CERT_DIR":
        directory = tmp_path / "trusted"
        directory.mkdir()
        shutil.copy(ca / "ca.pem", directory)
        subprocess.run(["openssl", "rehash", str(directory)], check=True, capture_output=True,
                       timeout=30)
        monkeypatch.setenv(variable, str(directory))


async def arrived(sandbox: TestClient[Any, Any]) -> int:
    """How many events the sandbox took for :data:`KEY`."""
    response = await sandbox.get(f"/sandbox/events?integration_key={KEY}")
    assert response.status == 200
    return len(await response.json())


async def post(sandbox: TestClient[Any, Any]) -> tuple[Outcome, int | None, str]:
    """One event posted by a client started now (it reads the environment at start)."""
    url = str(sandbox.make_url("/api"))
    async with IlertClient(api_url=url, beat_url=url, timeout=5) as client:
        result = await client.post_event("/events", EVENT)
    return result.outcome, result.status, result.detail


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "SSL_CERT_DIR"])
async def test_a_private_ca_named_by_the_environment_is_trusted(
        tls_sandbox: TestClient[Any, Any], ca: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    """A server whose certificate a private CA signed is reached once SSL_CERT_FILE names the
    CA's file, or SSL_CERT_DIR a hashed directory holding it, when the client starts."""
    trust(monkeypatch, variable, ca, tmp_path)
    assert await post(tls_sandbox) == (Outcome.DELIVERED, 202, "")
    assert await arrived(tls_sandbox) == 1


async def test_a_certificate_no_trusted_ca_signed_is_retried_as_a_tls_failure(
        tls_sandbox: TestClient[Any, Any], ca: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """With the system's CA store alone the private CA's certificate is refused: RETRY with
    the verification error as its detail, no status, nothing arrived, no traceback logged."""
    caplog.set_level(logging.DEBUG)
    trust(monkeypatch, None, ca, tmp_path)
    outcome, status, detail = await post(tls_sandbox)
    assert (outcome, status) == (Outcome.RETRY, None)
    assert "certificate" in detail.lower()  # aiohttp: "… certificate verify failed: unable to
    # get local issuer certificate"
    assert await arrived(tls_sandbox) == 0
    assert not [r for r in caplog.records if r.exc_info] and "Traceback" not in caplog.text


async def test_a_ca_file_that_cannot_be_read_is_a_warning_at_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """SSL_CERT_FILE naming a missing file: one WARNING when the client starts, naming the
    variable (OpenSSL skips such a file silently, and the handshakes would fail later)."""
    missing = tmp_path / "missing.pem"
    monkeypatch.setenv("SSL_CERT_FILE", str(missing))
    async with IlertClient():
        pass
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"SSL_CERT_FILE={missing} cannot be read: TLS to ilert trusts no CA from it"]


async def test_https_goes_through_the_https_proxy_in_a_tunnel(
        tls_sandbox: TestClient[Any, Any], ca: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTPS_PROXY set: the client opens a CONNECT tunnel through the proxy, verifies the
    server's certificate inside it, and the event arrives."""
    trust(monkeypatch, "SSL_CERT_FILE", ca, tmp_path)
    async with HttpProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # not for https URLs
        assert await post(tls_sandbox) == (Outcome.DELIVERED, 202, "")
    assert (proxy.connects, proxy.forwarded) == (1, 0)
    assert await arrived(tls_sandbox) == 1


async def test_http_goes_through_the_http_proxy(
        sandbox: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY set: the proxy forwards the plain request, and the event arrives."""
    async with HttpProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # not for http URLs
        assert await post(sandbox) == (Outcome.DELIVERED, 202, "")
    assert (proxy.connects, proxy.forwarded) == (0, 1)
    assert await arrived(sandbox) == 1


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost, 127.0.0.0/8", "*"])
async def test_hosts_no_proxy_covers_connect_directly(
        sandbox: TestClient[Any, Any], tls_sandbox: TestClient[Any, Any], ca: Path,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_proxy: str) -> None:
    """NO_PROXY naming the host (by address, network or ``*``): both schemes bypass the
    proxies, and both events arrive."""
    trust(monkeypatch, "SSL_CERT_FILE", ca, tmp_path)
    async with HttpProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", no_proxy)
        for server in (sandbox, tls_sandbox):
            assert await post(server) == (Outcome.DELIVERED, 202, "")
            assert await arrived(server) == 1
    assert (proxy.connects, proxy.forwarded) == (0, 0)


async def test_credentials_in_the_proxy_url_are_given_to_the_proxy(
        sandbox: TestClient[Any, Any], tls_sandbox: TestClient[Any, Any], ca: Path,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy that wants Basic credentials takes those of the variable's URL, on the CONNECT
    of an https request and on a plain http one."""
    trust(monkeypatch, "SSL_CERT_FILE", ca, tmp_path)
    async with HttpProxy(credentials=(USER, PASSWORD)) as proxy:
        for variable in ("HTTPS_PROXY", "HTTP_PROXY"):
            monkeypatch.setenv(variable, proxy.url.replace("//", f"//{USER}:{PASSWORD}@"))
        for server in (sandbox, tls_sandbox):
            assert await post(server) == (Outcome.DELIVERED, 202, "")
            assert await arrived(server) == 1
    assert (proxy.connects, proxy.forwarded, proxy.refused) == (1, 1, 0)


async def test_a_proxy_refusing_the_credentials_is_retried_and_the_password_never_shown(
        sandbox: TestClient[Any, Any], tls_sandbox: TestClient[Any, Any], ca: Path,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A proxy answering 407 is a setting to fix, so the event is retried (the CONNECT's 407
    as a failed connection, a plain request's as its status); the password appears in no
    detail and no log line, and log lines that quote it are masked."""
    caplog.set_level(logging.DEBUG)
    trust(monkeypatch, "SSL_CERT_FILE", ca, tmp_path)
    async with HttpProxy(credentials=(USER, "another-password")) as proxy:
        for variable in ("HTTPS_PROXY", "HTTP_PROXY"):
            monkeypatch.setenv(variable, proxy.url.replace("//", f"//{USER}:{PASSWORD}@"))
        through_tunnel = await post(tls_sandbox)
        plain = await post(sandbox)
    assert proxy.refused == 2
    assert through_tunnel[:2] == (Outcome.RETRY, None)
    assert "proxy auth" in through_tunnel[2].lower()  # aiohttp: "407, message='Proxy
    # Authentication Required', url='http://127.0.0.1:…'" (no credentials in the URL)
    assert plain[:2] == (Outcome.RETRY, 407)
    assert await arrived(sandbox) == 0 and await arrived(tls_sandbox) == 0
    for text in (through_tunnel[2], plain[2], caplog.text):
        assert PASSWORD not in text
    assert PASSWORD not in hide_secrets(f"a line quoting {PASSWORD}")
