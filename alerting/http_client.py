"""The HTTP client of http checks: urllib3 connection pools, without ``requests`` (which cost ~0.6 ms
of CPU more per check), whose connections obey ``alerting.deadline`` and keep the peer certificate.

It sends what ``requests`` sent for a check, so servers see no difference: the same default headers
(User-Agent, Accept, Accept-Encoding, keep-alive), ``user:password@`` in the URL as Basic auth,
certifi's CA bundle (``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` if set), and the proxies of the
environment with requests' rules: ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` in
either case, NO_PROXY by host, domain suffix, ``host:port`` or CIDR, one ``ProxyManager`` per proxy.
The environment is read once, when the client is made (requests re-read it on every request).

``pool_size`` connections per host are kept between checks; a burst above it opens more, closed
after use (urllib3's ``block=False``, as requests had it).
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote, urlsplit
from urllib.request import getproxies_environment

from urllib3 import BaseHTTPResponse, HTTPHeaderDict, PoolManager, ProxyManager, Timeout
from urllib3.exceptions import DecodeError, LocationParseError, ProtocolError
from urllib3.util import make_headers, parse_url
from urllib3.util.ssl_ import create_urllib3_context

from alerting import __version__
from alerting.deadline import POOL_CLASSES

USER_AGENT = f"outage-alerting/{__version__} (+https://github.com/)"
DEFAULT_HEADERS = {
    "User-Agent": USER_AGENT,
    "Accept-Encoding": ", ".join(make_headers(accept_encoding=True)["accept-encoding"].split(",")),
    "Accept": "*/*",
    "Connection": "keep-alive",
}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class MalformedBody(Exception):
    """The body could not be read as HTTP says (a broken chunk, a bad gzip stream, cut short)."""


class InvalidSchema(ValueError):
    """A proxy that cannot be used (SOCKS without PySocks); requests' name for it."""


class HttpClient:
    """Pooled HTTP(S) connections for checks, shared by threads; ``close()`` when done."""

    def __init__(self, pool_size: int = 32) -> None:
        self.pool_size = pool_size
        self.proxies = ProxyRules()
        self.ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None
        self._managers: dict[tuple[str | None, bool], PoolManager] = {}
        self._lock = threading.Lock()

    def request(self, method: str, url: str, headers: Mapping[str, str], timeout: float,
                verify: bool = True) -> BaseHTTPResponse:
        """Send one request, no redirect followed, no retry; the body is left to ``read_body``.
        Raises urllib3's (or the socket's) own errors."""
        target, auth = _target(_requote(url))
        sent = HTTPHeaderDict(DEFAULT_HEADERS)
        for name, value in headers.items():
            sent[name] = value  # replaces a default whatever its case
        if auth is not None:
            sent["Authorization"] = auth  # as requests: the URL's credentials win
        proxy = None
        if self.proxies.proxies:  # most often none: no need to parse the URL
            parts = urlsplit(target)  # as requests read it: an IPv6 host without brackets
            proxy = self.proxies.proxy_for(parts.scheme or "http", parts.hostname, parts.port)
        manager = self._manager(proxy, verify)
        return manager.urlopen(method, target, headers=sent, redirect=False, retries=False,
                               timeout=Timeout(connect=timeout, read=timeout),
                               preload_content=False, decode_content=True)

    def _manager(self, proxy: str | None, verify: bool) -> PoolManager:
        manager = self._managers.get((proxy, verify))
        if manager is not None:
            return manager
        with self._lock:
            manager = self._managers.get((proxy, verify))
            if manager is None:
                manager = self._managers[(proxy, verify)] = self._new_manager(proxy, verify)
            return manager

    def _new_manager(self, proxy: str | None, verify: bool) -> PoolManager:
        context = tls_context(self.ca_bundle) if verify else tls_context_unverified()
        pools: dict[str, Any] = {  # as requests' HTTPAdapter(pool_connections, pool_maxsize)
            "num_pools": max(self.pool_size, 10), "maxsize": self.pool_size, "block": False,
            "ssl_context": context, "cert_reqs": "CERT_REQUIRED" if verify else "CERT_NONE"}
        manager: PoolManager
        if proxy is None:
            manager = PoolManager(**pools)
        elif proxy.lower().startswith("socks"):
            return _socks_manager(proxy, pools)  # urllib3's own pools: no hard deadline through SOCKS
        else:
            manager = ProxyManager(proxy, proxy_headers=_proxy_headers(proxy), proxy_ssl_context=context, **pools)
        manager.pool_classes_by_scheme = POOL_CLASSES  # connections that obey the hard deadline
        return manager

    def close(self) -> None:
        with self._lock:
            managers, self._managers = list(self._managers.values()), {}
        for manager in managers:
            manager.clear()


def read_body(response: BaseHTTPResponse, limit: int) -> bytes:
    """At most ``limit`` bytes of the (decoded) body. A body read to its end hands the connection
    back to the pool for the next check of this host; one cut at ``limit`` closes it."""
    body, whole = b"", False
    try:
        for chunk in response.stream(65536, decode_content=True):
            body += chunk
            if len(body) >= limit:
                return body[:limit]
        whole = True
    except (ProtocolError, DecodeError) as exc:
        raise MalformedBody(str(exc)) from exc
    finally:
        _release(response, whole)
    return body


def _release(response: BaseHTTPResponse, whole: bool) -> None:
    """Give the connection back to the pool: as it is when the body was read to its end
    (``whole``), closed otherwise (unread bytes would be taken for the next answer)."""
    if not whole:
        response.close()
    response.release_conn()


def encoding_of(headers: Mapping[str, str]) -> str | None:
    """The text encoding of a body, from its Content-Type, as requests reads it (a ``charset``;
    else ISO-8859-1 for ``text/*`` and utf-8 for JSON; else unknown)."""
    content_type = headers.get("Content-Type")
    if not content_type:
        return None
    kind, *params = content_type.split(";")
    charset = None
    for param in params:
        key, equals, value = param.strip().partition("=")
        if equals and key.strip("\"' ").lower() == "charset":
            charset = value.strip("\"' ")  # the last one counts
    if charset is not None:
        return charset
    if "text" in kind:
        return "ISO-8859-1"
    if "application/json" in kind:
        return "utf-8"
    return None


class ProxyRules:
    """Which proxy a URL goes through, from the environment as it was when this was made."""

    def __init__(self) -> None:
        self.proxies = getproxies_environment()  # {"http": url, "all": url, "no": hosts...}; lowercase names win
        self.no_proxy = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""

    def proxy_for(self, scheme: str, host: str | None, port: int | None) -> str | None:
        """The proxy URL for a request (None: direct), as requests chose it."""
        if not self.proxies or self.bypass(host, port):
            return None
        proxy = self.proxies.get(scheme.lower()) or self.proxies.get("all")
        if proxy and "://" not in proxy:
            proxy = f"http://{proxy}"
        return proxy

    def bypass(self, host: str | None, port: int | None) -> bool:
        """NO_PROXY matches: requests' rules (IPv4 CIDR or address; a host or ``host:port`` suffix),
        then the standard library's (``*``, a domain and its subdomains)."""
        if host is None:
            return True
        host = host.lower()
        entries = [entry for entry in self.no_proxy.replace(" ", "").split(",") if entry]
        if _is_ipv4(host):
            for entry in entries:
                if "/" in entry:
                    if _valid_cidr(entry) and _in_network(host, entry):
                        return True
                elif host == entry:
                    return True
        else:
            with_port = f"{host}:{port}" if port else host
            if any(host.endswith(entry) or with_port.endswith(entry) for entry in entries):
                return True
        return _stdlib_bypass(host, self.proxies.get("no", ""))


def _stdlib_bypass(host: str, no_proxy: str) -> bool:
    """``urllib.request.proxy_bypass_environment`` (which requests asks second): ``*``, or a name
    that is the host or one of its parent domains."""
    if no_proxy == "*":
        return True
    for name in no_proxy.split(","):
        name = name.strip().lstrip(".").lower()
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _is_ipv4(host: str) -> bool:
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def _valid_cidr(entry: str) -> bool:
    address, _, mask = entry.partition("/")
    try:
        bits = int(mask)
    except ValueError:
        return False
    return 1 <= bits <= 32 and _is_ipv4(address)


def _in_network(ip: str, cidr: str) -> bool:
    address, _, mask = cidr.partition("/")
    netmask = (0xFFFFFFFF << (32 - int(mask))) & 0xFFFFFFFF
    ip_bits = int.from_bytes(socket.inet_aton(ip), "big")
    net_bits = int.from_bytes(socket.inet_aton(address), "big")
    return (ip_bits & netmask) == (net_bits & netmask)


def _target(url: str) -> tuple[str, str | None]:
    """(the URL to send, without credentials or fragment; the Basic Authorization of its
    ``user:password@``, or None). As requests: credentials count only with a password (maybe empty)."""
    if "@" not in url and "#" not in url:
        return url, None
    parts = parse_url(url)
    auth = None
    if parts.auth is not None and ":" in parts.auth:
        user, _, password = parts.auth.partition(":")
        auth = _basic(unquote(user), unquote(password))
    if parts.host is None:
        raise LocationParseError(url)
    return parts._replace(auth=None, fragment=None).url, auth


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _requote(url: str) -> str:
    """The URL quoted as requests sent it (``requests.utils.requote_uri``): escapes of unreserved
    characters decoded (``%7E`` -> ``~``), characters that must be escaped escaped."""
    parts = url.split("%")
    for i in range(1, len(parts)):
        code = parts[i][:2]
        if len(code) == 2 and code.isalnum():
            try:
                char = chr(int(code, 16))
            except ValueError:  # not an escape: quote the rest, '%' included
                return quote(url, safe="!#$&'()*+,/:;=?@[]~")
            parts[i] = char + parts[i][2:] if char in _UNRESERVED else f"%{parts[i]}"
        else:
            parts[i] = f"%{parts[i]}"
    return quote("".join(parts), safe="!#$%&'()*+,/:;=?@[]~")


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode("latin1")).decode("ascii")


def _proxy_headers(proxy: str) -> dict[str, str]:
    parts = parse_url(proxy)
    if not parts.auth:
        return {}
    user, _, password = parts.auth.partition(":")
    if not user:
        return {}
    return {"Proxy-Authorization": _basic(unquote(user), unquote(password))}


def _socks_manager(proxy: str, kwargs: dict[str, Any]) -> PoolManager:
    try:
        from urllib3.contrib.socks import SOCKSProxyManager
    except ImportError as exc:  # PySocks missing: requests said so too
        raise InvalidSchema("Missing dependencies for SOCKS support.") from exc
    parts = parse_url(proxy)
    user, _, password = (parts.auth or "").partition(":")
    return SOCKSProxyManager(proxy, username=unquote(user) or None, password=unquote(password) or None, **kwargs)


@lru_cache(maxsize=8)
def tls_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """One verifying context per CA bundle (certifi's by default, as requests), loaded once rather
    than for every new connection."""
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    if ca_bundle is None:
        import certifi

        ca_bundle = certifi.where()
    if os.path.isdir(ca_bundle):
        context.load_verify_locations(capath=ca_bundle)
    else:
        context.load_verify_locations(cafile=ca_bundle)
    return context


@lru_cache(maxsize=1)
def tls_context_unverified() -> ssl.SSLContext:
    """``verify_tls: false``: any certificate, any host name (the peer certificate is still kept)."""
    return create_urllib3_context(cert_reqs=ssl.CERT_NONE)
