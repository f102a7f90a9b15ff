"""Outbound HTTP with SSRF guards: the only code that opens network connections for sources.

Every hop (the listed URL and each redirect) is checked the same way:

1. scheme http/https, no user-info, host not on the deny-list (a domain or any subdomain).
   The host is first brought to the one ASCII form the resolver looks up (NFKC, the four
   IDNA label separators, nameprep's removal of soft hyphens and zero-width characters,
   case folding, punycode; see :func:`canonical_host`), and that form is what is checked,
   resolved, sent as ``Host`` and used for TLS. So ``ｆａｃｅｂｏｏｋ.com``, ``facebook。com``
   or ``face\u00adbook.com`` are ``facebook.com``; a host that does not normalise, or an
   ``xn--`` label that is not the encoding of its own normal form, is refused;
2. the host is resolved with ``getaddrinfo`` and *every* address must be public: loopback,
   private, link-local, unspecified, multicast, reserved and carrier-grade NAT ranges are
   refused, as are IPv6 forms that embed one (IPv4-mapped, 6to4, Teredo, NAT64). Because the
   check runs on resolved addresses, spellings such as ``2130706433``, ``0x7f.1`` or
   ``[::ffff:127.0.0.1]`` are caught like ``127.0.0.1``;
3. the connection goes to the checked address (pinned), so a second DNS answer cannot
   rebind it; TLS still verifies the certificate against the host name.

``timeout_s`` bounds the whole request (connect, TLS, headers, body, every redirect): a
watchdog shuts the socket at the deadline, so a server trickling a byte at a time cannot
hold a fetch past it. Only the DNS lookup itself (the system resolver's own timeouts) is
outside it.

``allow`` entries (host names, addresses or networks) lift step 2 for that target only;
tests use it for a server on 127.0.0.1. The deny-list always applies.
"""

from __future__ import annotations

import contextlib
import encodings.idna
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

from faceindex.errors import DecodeError, ImageTooLarge, SourceRefused

__all__ = [
    "DEFAULT_DENY_DOMAINS",
    "Fetched",
    "NetPolicy",
    "canonical_host",
    "check_address",
    "check_listed",
    "check_url",
    "fetch",
]

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
# NFKC leaves U+3002 (and turns U+FF61 into it); IDNA reads all four as the label dot.
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")


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
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:  # a bad port, or a netloc that NFKC turns into '/', '@', ...
        raise SourceRefused(f"{url}: malformed URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise SourceRefused(f"{url}: only http and https URLs are fetched")
    if parts.username or parts.password:
        raise SourceRefused(f"{url}: URLs with user names or passwords are refused")
    if not parts.hostname:
        raise SourceRefused(f"{url}: no host")
    try:
        host = canonical_host(parts.hostname)
    except ValueError as exc:
        raise SourceRefused(f"{url}: host {parts.hostname!r} refused: {exc}") from exc
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, host, port, path


@lru_cache(maxsize=4096)
def canonical_host(host: str) -> str:
    """The lower-case ASCII form of ``host`` that the resolver looks up (IDNA 2003, as
    Python's ``socket`` encodes names): NFKC, the IDNA label separators read as dots,
    characters nameprep maps to nothing (soft hyphen, zero-width joiners, ...) dropped,
    Unicode labels punycoded. Trailing dots are dropped. Raises ``ValueError`` for a host
    that does not normalise: an empty label, a label of other than letters, digits,
    ``-`` and ``_``, or an ``xn--`` label that is not the encoding of its own normal form."""
    try:
        return str(ipaddress.ip_address(host)).lower()
    except ValueError:
        pass
    text = unicodedata.normalize("NFKC", host).translate(_DOTS).rstrip(".")
    if not text:
        raise ValueError("empty host name")
    labels = []
    for label in text.split("."):
        try:
            ascii_label = encodings.idna.ToASCII(label).decode("ascii").lower()
            if ascii_label.startswith("xn--"):
                # ToUnicode re-encodes the decoded label and fails unless it round-trips.
                encodings.idna.ToUnicode(ascii_label)
        except UnicodeError as exc:
            raise ValueError(f"label {label!r} is not a valid host name label ({exc})") from exc
        if not _LABEL.fullmatch(ascii_label):
            raise ValueError(f"label {label!r} is not a valid host name label")
        labels.append(ascii_label)
    return ".".join(labels)


def _canonical_entry(entry: str) -> str:
    """A deny- or allow-list host name in canonical form ('' when it is not a host name)."""
    try:
        return canonical_host(entry.strip().strip("."))
    except ValueError:
        return ""


def _denied_domain(host: str, policy: NetPolicy) -> str | None:
    for domain in policy.deny_domains:
        d = _canonical_entry(domain)
        if d and (host == d or host.endswith("." + d)):
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
        if _canonical_entry(entry) == host:
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


def check_listed(url: str, policy: NetPolicy) -> tuple[str, str, int, str]:
    """(scheme, canonical host, port, path) of a URL the policy does not refuse by its
    form or its host name; no network (used when a URL list is registered, and per hop)."""
    scheme, host, port, path = _host(url)
    domain = _denied_domain(host, policy)
    if domain is not None:
        raise SourceRefused(f"{url}: {domain} is on the deny-list")
    return scheme, host, port, path


def check_url(url: str, policy: NetPolicy) -> tuple[str, str, int, str, str]:
    """(scheme, host, port, path, pinned address) for a URL that may be fetched."""
    scheme, host, port, path = check_listed(url, policy)
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
        # Handshake after self.sock is set, so the watchdog can cut a trickled handshake too.
        self.sock = self._ctx.wrap_socket(
            raw, server_hostname=self.host, do_handshake_on_connect=False
        )
        self.sock.do_handshake()


class _Watchdog:
    """Shuts a connection's socket when the deadline passes.

    A socket timeout bounds each read, not the request: a server sending a byte every
    second never trips it. Shutting the socket down from another thread makes the blocked
    read return at once; ``fired`` then tells the reader the short answer was a timeout."""

    def __init__(self, conn: http.client.HTTPConnection, seconds: float) -> None:
        self._conn = conn
        self.fired = threading.Event()
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired.set()
        sock = self._conn.sock
        if sock is not None:
            # socket.socket's own shutdown: an SSLSocket's would drop its TLS state first.
            with contextlib.suppress(OSError):  # already closed
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def fetch(url: str, policy: NetPolicy, *, max_bytes: int | None = None) -> Fetched:
    """GET exactly ``url`` (following at most ``max_redirects`` checked redirects), all of
    it within ``policy.timeout_s``."""
    limit = policy.max_bytes if max_bytes is None else max_bytes
    deadline = time.monotonic() + policy.timeout_s

    def timed_out() -> DecodeError:
        return DecodeError(f"{url}: timed out after {policy.timeout_s:g} s (whole request)")

    current = url
    for _hop in range(policy.max_redirects + 1):
        scheme, host, port, path, ip = check_url(current, policy)
        left = deadline - time.monotonic()
        if left <= 0:
            raise timed_out()
        cls = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
        conn = cls(host, port, ip, left)
        watchdog = _Watchdog(conn, left)
        try:
            with watchdog:
                conn.connect()
                if watchdog.fired.is_set():  # fired before there was a socket to shut
                    raise timed_out()
                conn.request(
                    "GET", path, headers={"User-Agent": policy.user_agent, "Accept": "image/*"}
                )
                resp = conn.getresponse()
                location = resp.getheader("Location")
                redirect = resp.status in _REDIRECTS and bool(location)
                body = b"" if redirect else _read_limited(resp, limit, url)
                if watchdog.fired.is_set():  # what was read may be cut short
                    raise timed_out()
            if redirect and location:
                current = urljoin(current, location)
                continue
            return Fetched(
                url,
                current,
                resp.status,
                body,
                datetime.now(timezone.utc).isoformat(timespec="seconds"),
                resp.getheader("Content-Type") or "",
            )
        except (OSError, http.client.HTTPException) as exc:
            if watchdog.fired.is_set() or isinstance(exc, TimeoutError):
                raise timed_out() from exc
            raise DecodeError(f"{url}: fetch failed: {exc}") from exc
        finally:
            conn.close()
    raise SourceRefused(f"{url}: more than {policy.max_redirects} redirects")


def _read_limited(resp: http.client.HTTPResponse, limit: int, url: str) -> bytes:
    declared = resp.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ImageTooLarge(f"{url}: {declared} bytes, over the {limit}-byte limit")
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = resp.read1(65536)  # what has arrived, not a wait for a full 64 KB
        if not chunk:
            if resp.length:  # http.client leaves a short Content-Length body to the caller
                raise http.client.IncompleteRead(b"".join(chunks), resp.length)
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise ImageTooLarge(f"{url}: over the {limit}-byte limit")
        chunks.append(chunk)
