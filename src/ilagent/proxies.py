"""Which proxy a request goes through, by the variables curl and requests read (pure).

``HTTPS_PROXY`` serves https URLs, ``HTTP_PROXY`` http URLs; the lower-case spelling wins over
the upper-case one, and an empty value means no proxy. ``NO_PROXY`` lists the hosts that
connect directly: ``*`` (all), a host name, a domain (``example.com`` and ``.example.com``
both cover ``api.example.com``), an IP address or a network (``10.0.0.0/8``). A proxy without
a scheme is ``http://``. Python's own reading (``urllib.request.proxy_bypass``, what aiohttp's
``trust_env`` uses) knows no networks in ``NO_PROXY``, which cluster setups rely on
(``10.0.0.0/8``); hence these few lines instead.

Credentials in a proxy's URL are split off into a ``Proxy-Authorization`` value, so the URL
that an HTTP client puts into its error messages never carries the password.
:meth:`Proxies.route` says where that value goes for one request (:class:`Route`: the proxy,
the headers of its ``CONNECT``, and headers of the request itself); :mod:`ilagent.outbound`
reads the environment when an HTTP client starts.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import SplitResult, unquote, urlsplit

__all__ = ["DIRECT", "Proxies", "Proxy", "Route", "bypasses_proxy"]


@dataclass(frozen=True)
class Proxy:
    """One proxy: its URL without credentials, and the ``Proxy-Authorization`` they make."""

    url: str
    authorization: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)  # to register as a secret

    @classmethod
    def parse(cls, value: str) -> Proxy:
        """A proxy from a variable's value (``http://user:password@host:port``)."""
        parts = urlsplit(value if "://" in value else f"http://{value}")
        if parts.username is None and parts.password is None:
            return cls(parts.geturl())
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        bare = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        return cls(bare, f"Basic {token}", password or None)


@dataclass(frozen=True)
class Route:
    """How one request goes: the proxy's URL (None: directly), the headers of the tunnel's
    ``CONNECT`` (aiohttp's ``proxy_headers=``), and the headers to add to the request itself."""

    proxy: str | None = None
    proxy_headers: Mapping[str, str] | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


DIRECT = Route()  # no proxy


@dataclass(frozen=True)
class Proxies:
    """The proxy settings of an environment, read once."""

    https: Proxy | None = None
    http: Proxy | None = None
    no_proxy: str = ""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Proxies:
        """``HTTPS_PROXY``, ``HTTP_PROXY`` and ``NO_PROXY`` of ``environ``."""

        def value(name: str) -> str:
            lower = environ.get(name.lower())
            return (lower if lower is not None else environ.get(name.upper(), "")).strip()

        https, http = value("https_proxy"), value("http_proxy")
        return cls(https=Proxy.parse(https) if https else None,
                   http=Proxy.parse(http) if http else None, no_proxy=value("no_proxy"))

    def __bool__(self) -> bool:
        return self.https is not None or self.http is not None

    def route(self, url: str) -> Route:
        """How a request to ``url`` goes: :data:`DIRECT`, or through its proxy.

        A proxy's credentials go with the ``CONNECT`` of an https request only, and with a
        plain http request itself; never to the server behind the tunnel."""
        if not self:
            return DIRECT
        parts = urlsplit(url)
        proxy = self._proxy(parts)
        if proxy is None:
            return DIRECT
        if proxy.authorization is None:
            return Route(proxy.url)
        credentials = {"Proxy-Authorization": proxy.authorization}
        if parts.scheme == "https":
            return Route(proxy.url, proxy_headers=credentials)
        return Route(proxy.url, headers=credentials)

    def _proxy(self, parts: SplitResult) -> Proxy | None:
        proxy = {"https": self.https, "http": self.http}.get(parts.scheme)
        if proxy is None or bypasses_proxy(parts.hostname or "", self.no_proxy):
            return None
        return proxy


def bypasses_proxy(host: str, no_proxy: str) -> bool:
    """True when the ``NO_PROXY`` list covers ``host`` (a name or an IP address)."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = (
            ipaddress.ip_address(host))
    except ValueError:
        address = None
    for entry in no_proxy.lower().split(","):
        entry = entry.strip().strip("[]").lstrip(".").rstrip(".")
        if entry == "*":
            return True
        if not entry:
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass  # a name in the list: it cannot cover an address
        elif host == entry or host.endswith(f".{entry}"):
            return True
    return False
