"""Which proxy a request goes through, by the variables curl and requests read (pure).

``HTTPS_PROXY`` serves https URLs, ``HTTP_PROXY`` http URLs; the lower-case spelling wins over
the upper-case one, and an empty value means no proxy. ``NO_PROXY`` lists the hosts that
connect directly: ``*`` (all), a host name, a domain (``example.com`` and ``.example.com``
both cover ``api.example.com``), an IP address or a network (``10.0.0.0/8``). A proxy without
a scheme is ``http://``. Python's own reading (``urllib.request.proxy_bypass``, what aiohttp's
``trust_env`` uses) knows no networks in ``NO_PROXY``, which cluster setups rely on
(``10.0.0.0/8``); hence these few lines instead.

Credentials in a proxy's URL are split off into a ``Proxy-Authorization`` value, so the URL
that aiohttp puts into its error messages never carries the password.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

__all__ = ["Proxies", "Proxy", "bypasses_proxy"]


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

    def for_url(self, url: str) -> Proxy | None:
        """The proxy a request to ``url`` goes through; None for a direct connection."""
        parts = urlsplit(url)
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
