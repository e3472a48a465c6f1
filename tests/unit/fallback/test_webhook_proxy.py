"""The fallback's webhook goes out as ilert's client does: through the proxy of HTTPS_PROXY /
HTTP_PROXY unless NO_PROXY covers its host, trusting the CA of SSL_CERT_FILE.

Real parts only: a webhook endpoint served by aiohttp (over TLS with a certificate of a CA made
for the session, tools/kafka/tls.py), and a real HTTP proxy (tests/http_proxy.py).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tls
from aiohttp import web
from aiohttp.test_utils import TestServer

from http_proxy import HttpProxy
from ilagent.fallback.alarm import ALARM, Notice
from ilagent.fallback.channels import ChannelError, Webhook

TOKEN = "hook-token-7c3e9b21"  # in the webhook's path, as many webhook URLs carry theirs
USER, PASSWORD = "ilagent", "hook-pr0xy-passw0rd"
NOTICE = Notice(kind=ALARM, since=1000.0, at=1180.0, open_for=180.0, backlog=3,
                last_error="", ilert_url="https://api.ilert.example/api", host="plant-7",
                version="test")


@pytest.fixture(autouse=True)
def no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the proxy variables it means; none comes from the machine."""
    for name in ("https_proxy", "http_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private CA (``ca.pem``) and its certificate for 127.0.0.1 (``broker.pem``, with key)."""
    return tls.make_certificates(tmp_path_factory.mktemp("ca"))


@dataclass
class Endpoint:
    """A webhook endpoint: its URLs (``http`` and ``https``) and the bodies it took."""

    http: str = ""
    https: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(json.loads(await request.read()))
        return web.Response(status=204)


@pytest.fixture
async def endpoint(ca: Path) -> AsyncIterator[Endpoint]:
    """The endpoint on 127.0.0.1, once in plain HTTP and once over TLS."""
    found = Endpoint()
    plain = TestServer(web.Application(), host="127.0.0.1")
    secure = TestServer(web.Application(), host="127.0.0.1")
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(ca / "broker.pem")
    for server in (plain, secure):
        server.app.router.add_post(f"/hooks/{TOKEN}", found.handle)
    await plain.start_server()
    await secure.start_server(ssl=served)
    try:
        found.http = str(plain.make_url(f"/hooks/{TOKEN}"))
        found.https = str(secure.make_url(f"/hooks/{TOKEN}"))
        assert found.https.startswith("https://")
        yield found
    finally:
        await plain.close()
        await secure.close()


async def send(url: str) -> None:
    """One notice by a webhook made now (its session reads the environment when it opens)."""
    webhook = Webhook(url, timeout=5.0)
    try:
        await webhook.send(NOTICE)
    finally:
        await webhook.close()


async def test_an_http_webhook_goes_through_the_http_proxy(
        endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY set: the proxy forwards the webhook's POST, and the notice arrives."""
    async with HttpProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # not for http URLs
        await send(endpoint.http)
    assert (proxy.connects, proxy.forwarded) == (0, 1)
    assert [body["status"] for body in endpoint.bodies] == [ALARM]


async def test_an_https_webhook_goes_through_the_https_proxy_trusting_ssl_cert_file(
        endpoint: Endpoint, ca: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTPS_PROXY set and SSL_CERT_FILE naming a private CA: the webhook opens a CONNECT
    tunnel through the proxy, verifies the certificate that CA signed, and the notice arrives."""
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca / "ca.pem"))
    async with HttpProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # not for https URLs
        await send(endpoint.https)
    assert (proxy.connects, proxy.forwarded) == (1, 0)
    assert [body["status"] for body in endpoint.bodies] == [ALARM]


async def test_credentials_in_the_proxy_url_are_given_to_the_proxy(
        endpoint: Endpoint, ca: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy that wants Basic credentials takes those of the variable's URL, on the CONNECT
    of an https webhook and on a plain http one."""
    monkeypatch.setenv("SSL_CERT_FILE", str(ca / "ca.pem"))
    async with HttpProxy(credentials=(USER, PASSWORD)) as proxy:
        for variable in ("HTTPS_PROXY", "HTTP_PROXY"):
            monkeypatch.setenv(variable, proxy.url.replace("//", f"//{USER}:{PASSWORD}@"))
        await send(endpoint.http)
        await send(endpoint.https)
    assert (proxy.connects, proxy.forwarded, proxy.refused) == (1, 1, 0)
    assert len(endpoint.bodies) == 2


async def test_a_proxy_refusing_the_credentials_fails_the_webhook_without_the_password(
        endpoint: Endpoint, ca: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy answering 407 fails the attempt (the runner tries again later), and the reason
    it gives, safe to log, never holds the proxy's password."""
    monkeypatch.setenv("SSL_CERT_FILE", str(ca / "ca.pem"))
    async with HttpProxy(credentials=(USER, "another-password")) as proxy:
        for variable in ("HTTPS_PROXY", "HTTP_PROXY"):
            monkeypatch.setenv(variable, proxy.url.replace("//", f"//{USER}:{PASSWORD}@"))
        reasons = []
        for url in (endpoint.http, endpoint.https):
            with pytest.raises(ChannelError) as failed:
                await send(url)
            reasons.append(str(failed.value))
    assert proxy.refused == 2 and endpoint.bodies == []
    assert reasons[0] == "HTTP 407"
    assert "407" in reasons[1] and all(PASSWORD not in reason for reason in reasons)


async def test_hosts_no_proxy_covers_connect_directly_the_others_through_the_proxy(
        endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_PROXY naming 127.0.0.1: a webhook to that address connects directly, the same
    endpoint named ``localhost`` goes through the proxy; both notices arrive."""
    async with HttpProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        await send(endpoint.http)
        assert proxy.forwarded == 0
        await send(endpoint.http.replace("//127.0.0.1:", "//localhost:"))
    assert (proxy.connects, proxy.forwarded) == (0, 1)
    assert len(endpoint.bodies) == 2
