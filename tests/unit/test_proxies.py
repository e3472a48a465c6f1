"""Which proxy a request goes through: curl's variables and NO_PROXY rules, as a table."""

from __future__ import annotations

import base64

import pytest

from ilagent.proxies import DIRECT, Proxies, Proxy, Route, bypasses_proxy


@pytest.mark.parametrize(("host", "no_proxy", "bypass"), [
    ("api.ilert.com", "", False),
    ("api.ilert.com", "*", True),
    ("api.ilert.com", "ilert.com", True),
    ("api.ilert.com", ".ilert.com", True),
    ("api.ilert.com", "other.example, ILERT.com ", True),
    ("api.ilert.com", "api.ilert.com.", True),
    ("notilert.com", "ilert.com", False),
    ("ilert.com", "api.ilert.com", False),
    ("127.0.0.1", "127.0.0.1", True),
    ("127.0.0.1", "127.0.0.0/8", True),
    ("10.1.2.3", "127.0.0.0/8,10.0.0.0/8", True),
    ("10.1.2.3", "10.1.2.4", False),
    ("127.0.0.1", "localhost", False),
    ("::1", "[::1]", True),
    ("::1", "::/120", True),
    ("localhost", "127.0.0.1", False),
])
def test_no_proxy_covers_hosts_domains_addresses_and_networks(host: str, no_proxy: str,
                                                               bypass: bool) -> None:
    """A name matches itself and its subdomains, an address its entry or network, ``*`` all."""
    assert bypasses_proxy(host, no_proxy) is bypass


def test_each_scheme_has_its_own_variable_and_lower_case_wins() -> None:
    """https URLs take HTTPS_PROXY, http URLs HTTP_PROXY; https_proxy beats HTTPS_PROXY, and an
    empty lower-case value means no proxy at all."""
    proxies = Proxies.from_environ({
        "https_proxy": "http://lower:3128", "HTTPS_PROXY": "http://upper:3128",
        "HTTP_PROXY": "plain:8080", "NO_PROXY": "sandbox.local"})
    assert proxies.route("https://api.ilert.com/api/events") == Route("http://lower:3128")
    assert proxies.route("http://127.0.0.1:8080/api") == Route("http://plain:8080")
    assert proxies.route("https://sandbox.local/api") == DIRECT
    off = Proxies.from_environ({"https_proxy": "", "HTTPS_PROXY": "http://upper:3128"})
    assert not off and off.route("https://api.ilert.com/api") == DIRECT


def test_credentials_leave_the_url_for_a_header() -> None:
    """``user:password@`` (percent-encoded as URLs need) becomes a Basic Proxy-Authorization;
    the URL kept has no credentials, and the repr shows neither."""
    proxy = Proxy.parse("http://ops%40acme:p%3Ass%20word@proxy.acme:3128")
    assert proxy.url == "http://proxy.acme:3128"
    assert proxy.password == "p:ss word"
    assert proxy.authorization == "Basic " + base64.b64encode(b"ops@acme:p:ss word").decode()
    assert "word" not in repr(proxy) and "Basic" not in repr(proxy)


AUTHORIZATION = "Basic " + base64.b64encode(b"ops:s3cret-pw").decode()
CREDENTIALS = {"Proxy-Authorization": AUTHORIZATION}


@pytest.mark.parametrize(("environ", "url", "route"), [
    ({}, "https://api.ilert.com/api", DIRECT),
    ({"HTTPS_PROXY": "proxy:3128"}, "https://api.ilert.com/api", Route("http://proxy:3128")),
    ({"HTTPS_PROXY": "proxy:3128"}, "http://hooks.local/x", DIRECT),
    ({"HTTPS_PROXY": "http://ops:s3cret-pw@proxy:3128"}, "https://api.ilert.com/api",
     Route("http://proxy:3128", proxy_headers=CREDENTIALS)),
    ({"HTTPS_PROXY": "http://ops:s3cret-pw@proxy:3128"}, "HTTPS://api.ilert.com/api",
     Route("http://proxy:3128", proxy_headers=CREDENTIALS)),
    ({"HTTP_PROXY": "http://ops:s3cret-pw@proxy:3128"}, "http://hooks.local/x",
     Route("http://proxy:3128", headers=CREDENTIALS)),
    ({"HTTP_PROXY": "http://ops:s3cret-pw@proxy:3128", "NO_PROXY": ".local"},
     "http://hooks.local/x", DIRECT),
])
def test_a_route_gives_the_credentials_to_the_connect_or_to_the_plain_request(
        environ: dict[str, str], url: str, route: Route) -> None:
    """Through a proxy with credentials, an https request carries them on the tunnel's CONNECT
    (``proxy_headers``), a plain http request in its own headers; never both."""
    assert Proxies.from_environ(environ).route(url) == route
