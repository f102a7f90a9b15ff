"""Outbound HTTP with SSRF guards: the only code that opens network connections for sources.

Every hop (the listed URL and each redirect) is checked the same way:

1. scheme http/https, no user-info, host not on the deny-list (a domain or any subdomain);
2. the host is resolved with ``getaddrinfo`` and *every* address must be public: loopback,
   private, link-local, unspecified, multicast, reserved and carrier-grade NAT ranges are
   refused, as are IPv6 forms that embed one (IPv4-mapped, 6to4, Teredo, NAT64). Because the
   check runs on resolved addresses, spellings such as ``2130706433``, ``0x7f.1`` or
   ``[::ffff:127.0.0.1]`` are caught like ``127.0.0.1``;
3. the connection goes to the checked address (pinned), so a second DNS answer cannot
   rebind it; TLS still verifies the certificate against the host name.

``allow`` entries (host names, addresses or networks) lift step 2 for that target only;
tests use it for a server on 127.0.0.1. The deny-list always applies.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urljoin, urlsplit

from faceindex.errors import DecodeError, ImageTooLarge, SourceRefused

__all__ = ["DEFAULT_DENY_DOMAINS", "Fetched", "NetPolicy", "check_address", "check_url", "fetch"]

DEFAULT_DENY_DOMAINS: tuple[str, ...] = (
    "facebook.com",
    "instagram.com",
    "twitter.com",
    "x.com",
    "youtube.com",
    "linkedin.com",
    "venmo.com",
    "tiktok.com",
    "vk.com",
)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_EXTRA_BLOCKED = (
    ipaddress.ip_network("100.64.0.0/10"),  # carrier-grade NAT
    ipaddress.ip_network("192.0.0.0/24"),
    ipaddress.ip_network("198.18.0.0/15"),
)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class NetPolicy:
    deny_domains: tuple[str, ...] = DEFAULT_DENY_DOMAINS
    allow: tuple[str, ...] = ()  # hosts, addresses or CIDR networks exempt from the IP check
    user_agent: str = "faceindex-fetch/0.1"
    timeout_s: float = 20.0  # whole request, redirects included
    max_bytes: int = 64 * 1024 * 1024
    max_redirects: int = 3


@dataclass(frozen=True)
class Fetched:
    url: str  # as listed
    final_url: str  # after redirects
    status: int
    body: bytes
    fetched_at: str
    content_type: str = ""


def _host(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise SourceRefused(f"{url}: only http and https URLs are fetched")
    if parts.username or parts.password:
        raise SourceRefused(f"{url}: URLs with user names or passwords are refused")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise SourceRefused(f"{url}: bad port") from exc
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise SourceRefused(f"{url}: no host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, host, port, path


def _denied_domain(host: str, policy: NetPolicy) -> str | None:
    for domain in policy.deny_domains:
        d = domain.lower().strip(".")
        if host == d or host.endswith("." + d):
            return d
    return None


def _embedded(ip: IPAddress) -> list[IPAddress]:
    out: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in (ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None):
            if inner is not None:
                out.append(inner)
        if ip in ipaddress.ip_network("64:ff9b::/96"):
            out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


def _allowed(host: str, ip: IPAddress, policy: NetPolicy) -> bool:
    for entry in policy.allow:
        if entry.lower().rstrip(".") == host:
            return True
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def check_address(host: str, ip: IPAddress, policy: NetPolicy) -> None:
    """Refuse a non-public address unless the allow-list names the host or the address."""
    if _allowed(host, ip, policy):
        return
    for addr in _embedded(ip):
        if (
            addr.is_loopback
            or addr.is_private
            or addr.is_link_local
            or addr.is_unspecified
            or addr.is_multicast
            or addr.is_reserved
            or any(addr in net for net in _EXTRA_BLOCKED if addr.version == net.version)
        ):
            raise SourceRefused(f"{host} resolves to {ip}, a non-public address: refused")


def check_url(url: str, policy: NetPolicy) -> tuple[str, str, int, str, str]:
    """(scheme, host, port, path, pinned address) for a URL that may be fetched."""
    scheme, host, port, path = _host(url)
    domain = _denied_domain(host, policy)
    if domain is not None:
        raise SourceRefused(f"{url}: {domain} is on the deny-list")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SourceRefused(f"{url}: cannot resolve {host}: {exc}") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise SourceRefused(f"{url}: {host} has no address")
    for ip in addresses:  # every answer: a mixed answer is a rebinding trick
        check_address(host, ip, policy)
    addresses.sort(key=lambda ip: ip.version)  # IPv4 first: the common server binding
    return scheme, host, port, path, str(addresses[0])


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, ip: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._ip = ip

    def connect(self) -> None:
        self.sock = socket.create_connection((self._ip, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, ip: str, timeout: float) -> None:
        self._ctx = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._ctx)
        self._ip = ip

    def connect(self) -> None:
        raw = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(raw, server_hostname=self.host)


def fetch(url: str, policy: NetPolicy, *, max_bytes: int | None = None) -> Fetched:
    """GET exactly ``url`` (following at most ``max_redirects`` checked redirects)."""
    limit = policy.max_bytes if max_bytes is None else max_bytes
    deadline = time.monotonic() + policy.timeout_s
    current = url
    for _hop in range(policy.max_redirects + 1):
        scheme, host, port, path, ip = check_url(current, policy)
        left = deadline - time.monotonic()
        if left <= 0:
            raise DecodeError(f"{url}: timed out after {policy.timeout_s:.0f}s")
        cls = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
        conn = cls(host, port, ip, left)
        try:
            conn.request(
                "GET", path, headers={"User-Agent": policy.user_agent, "Accept": "image/*"}
            )
            resp = conn.getresponse()
            location = resp.getheader("Location")
            if resp.status in _REDIRECTS and location:
                current = urljoin(current, location)
                continue
            body = _read_limited(resp, limit, deadline, url)
            return Fetched(
                url,
                current,
                resp.status,
                body,
                datetime.now(timezone.utc).isoformat(timespec="seconds"),
                resp.getheader("Content-Type") or "",
            )
        except (OSError, http.client.HTTPException) as exc:
            raise DecodeError(f"{url}: fetch failed: {exc}") from exc
        finally:
            conn.close()
    raise SourceRefused(f"{url}: more than {policy.max_redirects} redirects")


def _read_limited(resp: http.client.HTTPResponse, limit: int, deadline: float, url: str) -> bytes:
    declared = resp.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ImageTooLarge(f"{url}: {declared} bytes, over the {limit}-byte limit")
    chunks: list[bytes] = []
    total = 0
    while True:
        if time.monotonic() > deadline:
            raise DecodeError(f"{url}: timed out while reading")
        chunk = resp.read(65536)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise ImageTooLarge(f"{url}: over the {limit}-byte limit")
        chunks.append(chunk)
