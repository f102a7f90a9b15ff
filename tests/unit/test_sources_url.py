"""URL-list source and its SSRF guard, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from faceindex.errors import DecodeError, ImageTooLarge, SourceRefused
from faceindex.sources.base import SourceItem
from faceindex.sources.netguard import NetPolicy, canonical_host, check_url, fetch
from faceindex.sources.urllist import UrlListSource, clear_robots_cache

pytestmark = pytest.mark.unit

IMAGE = b"\xff\xd8\xff\xe0not-really-a-jpeg" * 10
ROBOTS = b"User-agent: faceindex-fetch\nDisallow: /private/\n\nUser-agent: *\nDisallow: /\n"


class Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
    seen: list[tuple[str, str]] = []
    hosts: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        Handler.seen.append((self.path, self.headers.get("User-Agent", "")))
        Handler.hosts.append(self.headers.get("Host", ""))
        if self.path == "/slow":
            time.sleep(2)
        status, headers, body = Handler.routes.get(self.path, (404, {}, b"missing"))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def _httpd() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server(_httpd: int) -> int:
    port = _httpd
    Handler.seen = []
    Handler.routes = {
        "/img.jpg": (200, {"Content-Type": "image/jpeg"}, IMAGE),
        "/private/img.jpg": (200, {}, IMAGE),
        "/robots.txt": (200, {}, ROBOTS),
        "/to-loopback": (302, {"Location": f"http://127.0.0.1:{port}/img.jpg"}, b""),
        "/to-decimal": (302, {"Location": f"http://2130706433:{port}/img.jpg"}, b""),
        "/to-mapped": (302, {"Location": f"http://[::ffff:127.0.0.1]:{port}/img.jpg"}, b""),
        "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data"}, b""),
        "/to-denied": (301, {"Location": "https://www.facebook.com/photo.jpg"}, b""),
        "/to-same-host": (307, {"Location": "/img.jpg"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
        "/slow": (200, {}, IMAGE),
    }
    clear_robots_cache()
    return port


def open_policy(**kw: object) -> NetPolicy:
    return NetPolicy(allow=("127.0.0.1/32",), **kw)  # type: ignore[arg-type]


# Only the name "localhost" is allowed: a redirect to any other spelling of loopback must fail.
NAME_ONLY = NetPolicy(allow=("localhost",))


def test_allowed_local_server_is_fetched(server: int) -> None:
    got = fetch(f"http://127.0.0.1:{server}/img.jpg", open_policy())
    assert got.status == 200 and got.body == IMAGE and got.content_type == "image/jpeg"
    assert Handler.seen[-1] == ("/img.jpg", "faceindex-fetch/0.1")


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "2130706433",  # decimal 127.0.0.1
        "0x7f.0.0.1",  # hex
        "0177.0.0.1",  # octal
        "127.1",  # short form
        "[::1]",
        "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
        "[::ffff:7f00:1]",
        "0.0.0.0",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata (link-local)
        "100.64.0.1",  # carrier-grade NAT
        "[fd00::1]",  # unique local
        "[fe80::1]",  # link-local
        "[64:ff9b::a00:1]",  # NAT64 of 10.0.0.1
        "[2002:a00:1::]",  # 6to4 of 10.0.0.1
    ],
)
def test_non_public_addresses_are_refused_in_every_spelling(server: int, host: str) -> None:
    with pytest.raises(SourceRefused, match="non-public|cannot resolve"):
        fetch(f"http://{host}:{server}/img.jpg", NetPolicy())
    assert not Handler.seen  # refused before any connection


@pytest.mark.parametrize(
    "url",
    [
        "https://facebook.com/a.jpg",
        "https://www.instagram.com/p/1.jpg",
        "http://pbs.twimg.twitter.com/x.jpg",
        "https://x.com/pic.jpg",
        "https://m.youtube.com/t.jpg",
        "https://LINKEDIN.com./me.jpg",
        "https://venmo.com/u.jpg",
        "https://www.tiktok.com/v.jpg",
        "https://vk.com/photo.jpg",
    ],
)
def test_deny_listed_domains_are_refused(url: str) -> None:
    with pytest.raises(SourceRefused, match="deny-list"):
        check_url(url, NetPolicy(allow=("0.0.0.0/0", "::/0")))  # the allow-list cannot lift it


def test_lookalike_domains_are_not_deny_listed() -> None:
    # notfacebook.com is not facebook.com: refused, if at all, for another reason.
    with pytest.raises(SourceRefused) as info:
        check_url("http://notfacebook.com.invalid/a.jpg", NetPolicy())
    assert "deny-list" not in str(info.value)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/a.jpg", "file:///etc/passwd", "http://user:pw@example.com/a.jpg"]
)
def test_other_schemes_and_credentials_are_refused(url: str) -> None:
    with pytest.raises(SourceRefused):
        check_url(url, NetPolicy())


@pytest.mark.parametrize(
    "route", ["/to-loopback", "/to-decimal", "/to-mapped", "/to-metadata", "/to-denied"]
)
def test_every_redirect_is_checked(server: int, route: str) -> None:
    with pytest.raises(SourceRefused):
        fetch(f"http://localhost:{server}{route}", NAME_ONLY)
    assert [p for p, _ in Handler.seen] == [route]  # the target was never contacted


def test_a_redirect_within_the_allowed_host_is_followed(server: int) -> None:
    got = fetch(f"http://localhost:{server}/to-same-host", NAME_ONLY)
    assert got.body == IMAGE and got.final_url.endswith("/img.jpg")


def test_redirect_loops_size_and_time_are_limited(server: int) -> None:
    with pytest.raises(SourceRefused, match="redirects"):
        fetch(f"http://127.0.0.1:{server}/loop", open_policy())
    with pytest.raises(ImageTooLarge):
        fetch(f"http://127.0.0.1:{server}/img.jpg", open_policy(max_bytes=50))
    started = time.monotonic()
    with pytest.raises(DecodeError, match="timed out|fetch failed"):
        fetch(f"http://127.0.0.1:{server}/slow", open_policy(timeout_s=0.5))
    assert time.monotonic() - started < 1.8


def test_url_list_reads_exactly_the_listed_urls_and_records_provenance(
    server: int, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{server}"
    listing = tmp_path / "urls.txt"
    listing.write_text(f"# photos\n{base}/img.jpg\n\n{base}/private/img.jpg\n{base}/img.jpg\n")
    prov = tmp_path / "prov.jsonl"
    src = UrlListSource(str(listing), open_policy(), str(prov))
    items = list(src.items())
    assert [i.locator for i in items] == [f"{base}/img.jpg", f"{base}/private/img.jpg"]
    assert src.read(items[0]) == IMAGE
    with pytest.raises(SourceRefused, match="robots.txt"):
        src.read(items[1])
    paths = [p for p, _ in Handler.seen]
    assert paths.count("/robots.txt") == 1 and "/private/img.jpg" not in paths
    records = [json.loads(line) for line in prov.read_text().splitlines()]
    ok = records[0]
    assert ok["url"] == items[0].locator and ok["status"] == 200
    assert len(ok["sha256"]) == 64 and ok["fetched_at"]
    assert "robots.txt" in records[1]["refused"]


def test_a_failing_robots_txt_means_do_not_fetch(server: int, tmp_path: Path) -> None:
    Handler.routes["/robots.txt"] = (503, {}, b"down")
    listing = tmp_path / "urls.txt"
    listing.write_text(f"http://127.0.0.1:{server}/img.jpg\n")
    src = UrlListSource(str(listing), open_policy())
    with pytest.raises(SourceRefused, match="robots"):
        src.read(SourceItem(f"http://127.0.0.1:{server}/img.jpg"))


def test_a_missing_robots_txt_allows_fetching(server: int, tmp_path: Path) -> None:
    del Handler.routes["/robots.txt"]
    src = UrlListSource(str(tmp_path / "none.txt"), open_policy())
    assert src.read(SourceItem(f"http://127.0.0.1:{server}/img.jpg")) == IMAGE


# -- host normalisation: every spelling the resolver reads as a denied host is denied -----

DENIED_SPELLINGS = [
    "FaceBook.COM",  # mixed case
    "\uff46\uff41\uff43\uff45\uff42\uff4f\uff4f\uff4b.com",  # fullwidth letters
    "\uff26\uff21\uff23\uff25\uff22\uff2f\uff2f\uff2b\uff0e\uff23\uff2f\uff2d",  # all fullwidth
    "facebook\u3002com",  # ideographic full stop
    "facebook\uff0ecom",  # fullwidth full stop
    "facebook\uff61com",  # halfwidth ideographic full stop
    "face\u00adbook.com",  # soft hyphen
    "face\u200dbook.com",  # zero-width joiner
    "face\u200bbook.com",  # zero-width space
    "face\ufeffbook.com",  # zero-width no-break space
    "facebook.com\u3002",  # trailing ideographic dot
    "www.facebook.com.",  # trailing dot
    "facebook.c\u2134m",  # script small o (NFKC: o)
    "m.\uff46acebook.com",  # a subdomain, partly fullwidth
]


@pytest.mark.parametrize("host", DENIED_SPELLINGS, ids=[ascii(h) for h in DENIED_SPELLINGS])
def test_every_spelling_of_a_denied_host_is_denied(host: str) -> None:
    # What the resolver would look up is facebook.com (Python encodes names with IDNA).
    assert host.encode("idna").decode().lower().rstrip(".").endswith("facebook.com")
    with pytest.raises(SourceRefused, match="deny-list"):
        check_url(f"https://{host}/a.jpg", NetPolicy(allow=("0.0.0.0/0", "::/0")))


def test_a_denied_host_spelt_unicode_in_the_policy_is_denied() -> None:
    policy = NetPolicy(deny_domains=("\uff45xample.org",), allow=("0.0.0.0/0", "::/0"))
    with pytest.raises(SourceRefused, match="deny-list"):
        check_url("http://img.EXAMPLE.org/a.jpg", policy)


@pytest.mark.parametrize(
    "host",
    [
        "facebook..com",  # empty label
        "face%62ook.com",  # percent-encoding is not part of a host name
        "face book.com",
        "xn--facebook-.com",  # punycode that does not decode
        # The punycode of fullwidth "facebook": not the encoding of its own normal form.
        "xn--"
        + "\uff46\uff41\uff43\uff45\uff42\uff4f\uff4f\uff4b".encode("punycode").decode()
        + ".com",
        "\u00ad.com",  # a label that is nothing but an ignorable
    ],
)
def test_hosts_that_do_not_normalise_are_refused(host: str) -> None:
    with pytest.raises(SourceRefused, match="refused"):
        check_url(f"http://{host}/a.jpg", NetPolicy(allow=("0.0.0.0/0", "::/0")))


def test_punycode_of_a_lookalike_is_another_host() -> None:
    # "f\u00e0cebook.com" (a with grave) is a different name, and its A-label stays as it is.
    lookalike = "f\u00e0cebook.com".encode("idna").decode()
    assert lookalike.startswith("xn--") and canonical_host(lookalike) == lookalike
    assert canonical_host("F\u00c0CEBOOK.com") == lookalike
    with pytest.raises(SourceRefused) as info:
        check_url(f"http://{lookalike}.invalid/a.jpg", NetPolicy())
    assert "deny-list" not in str(info.value)


def test_the_normalised_host_is_the_one_connected_and_sent(server: int) -> None:
    fullwidth = "\uff2c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54\u3002"  # Localhost.
    assert canonical_host(fullwidth) == "localhost"
    got = fetch(f"http://{fullwidth}:{server}/img.jpg", NAME_ONLY)
    assert got.body == IMAGE and Handler.hosts[-1] == f"localhost:{server}"


# -- the timeout bounds the whole request, not one read --------------------------------

TRICKLE_FOR_S = 8.0  # the server gives up by itself; the old code waited for all of it


class Trickle(socketserver.BaseRequestHandler):
    """Sends a byte every 0.5 s: in the TLS handshake, the status line and headers, or
    the body."""

    def handle(self) -> None:
        request = self.request.recv(65536)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n"
        if b"/robots.txt" in request:
            self.request.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            return
        if request.startswith(b"\x16"):  # a TLS ClientHello: trickle the handshake
            trickled = b"\x16\x03\x03\x00\x7a" + b"\x02" * 100
        elif b"/slow-headers" in request:
            trickled = head
        else:
            trickled = b"\xff" * 1000
            self.request.sendall(head)
        stop = time.monotonic() + TRICKLE_FOR_S
        try:
            for byte in trickled:
                if time.monotonic() > stop:
                    return
                self.request.sendall(bytes([byte]))
                time.sleep(0.5)
        except OSError:
            return  # the client hung up: what the fix does


@pytest.fixture(scope="module")
def trickler() -> Iterator[int]:
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Trickle)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("url", ["http:/slow-headers", "http:/slow-body", "https:/tls"])
def test_a_trickling_server_cannot_hold_a_fetch_past_its_timeout(trickler: int, url: str) -> None:
    scheme, route = url.split(":")
    started = time.monotonic()
    with pytest.raises(DecodeError, match="timed out after 1.5 s"):
        fetch(f"{scheme}://127.0.0.1:{trickler}{route}", open_policy(timeout_s=1.5))
    assert time.monotonic() - started < 1.5 + 0.7


def test_a_timed_out_url_is_recorded_with_its_reason(trickler: int, tmp_path: Path) -> None:
    clear_robots_cache()
    url = f"http://127.0.0.1:{trickler}/slow-body"
    prov = tmp_path / "prov.jsonl"
    src = UrlListSource(str(tmp_path / "urls.txt"), open_policy(timeout_s=1.0), str(prov))
    started = time.monotonic()
    with pytest.raises(DecodeError, match="timed out"):
        src.read(SourceItem(url))
    assert time.monotonic() - started < 1.0 + 0.7
    (record,) = [json.loads(line) for line in prov.read_text().splitlines()]
    assert record["url"] == url and "timed out after 1 s" in record["refused"]


def test_a_socket_that_closes_early_is_a_failure_not_a_short_image() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly ten b")
        conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    with pytest.raises(DecodeError, match="fetch failed"):
        fetch(f"http://127.0.0.1:{port}/x.jpg", open_policy(timeout_s=5))
    thread.join(5)
    listener.close()
