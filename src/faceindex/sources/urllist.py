"""A URL-list source: exactly the URLs listed in a text file, one per line, nothing more.

No links are followed and nothing is crawled. Each fetch goes through
:mod:`faceindex.sources.netguard` (deny-listed domains, non-public addresses after DNS
resolution and on every redirect, size and time limits) and honours the site's robots.txt
for this source's own user agent. Every attempt appends a provenance line (URL, final URL,
time fetched, HTTP status, content sha256, or the refusal) to a JSON-lines file, so what
was collected, and from where, can be shown later.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from faceindex.errors import DecodeError, FaceIndexError, NotFoundError, SourceRefused
from faceindex.sources.base import SourceItem
from faceindex.sources.netguard import NetPolicy, fetch

__all__ = ["UrlListSource", "clear_robots_cache", "read_url_list"]

log = logging.getLogger(__name__)

ROBOTS_MAX_BYTES = 512 * 1024
ROBOTS_TTL_S = 300.0
# Per process: one robots.txt fetch per site, not per image. Keyed by origin and agent.
_robots: dict[tuple[str, str], tuple[float, RobotFileParser]] = {}
_robots_lock = threading.Lock()


def clear_robots_cache() -> None:
    with _robots_lock:
        _robots.clear()


def read_url_list(path: Path) -> list[str]:
    """The URLs of a list file: one per line; blank lines and ``#`` comments are skipped."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise NotFoundError(f"cannot read URL list {path}: {exc.strerror or exc}") from exc
    urls = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    return list(dict.fromkeys(urls))


@dataclass(frozen=True)
class UrlListSource:
    uri: str  # the list file
    policy: NetPolicy = field(default_factory=NetPolicy)
    provenance_path: str = ""  # JSON lines; empty: not recorded
    kind: str = "urls"

    def items(self) -> Iterator[SourceItem]:
        for url in read_url_list(Path(self.uri)):
            yield SourceItem(url)

    def read(self, item: SourceItem) -> bytes:
        url = item.locator
        try:
            if not self._robots_allow(url):
                raise SourceRefused(f"{url}: disallowed by robots.txt for {self.policy.user_agent}")
            got = fetch(url, self.policy)
        except FaceIndexError as exc:
            self._record({"url": url, "refused": f"{type(exc).__name__}: {exc}"})
            raise
        sha = hashlib.sha256(got.body).hexdigest()
        self._record(
            {
                "url": url,
                "final_url": got.final_url,
                "fetched_at": got.fetched_at,
                "status": got.status,
                "sha256": sha,
                "bytes": len(got.body),
                "content_type": got.content_type,
            }
        )
        if got.status != 200:
            raise DecodeError(f"{url}: HTTP {got.status}")
        return got.body

    def _robots_allow(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        key = (origin, self.policy.user_agent)
        with _robots_lock:
            cached = _robots.get(key)
        if cached is None or time.monotonic() - cached[0] > ROBOTS_TTL_S:
            cached = (time.monotonic(), self._load_robots(origin))
            with _robots_lock:
                _robots[key] = cached
        return cached[1].can_fetch(self.policy.user_agent, url)

    def _load_robots(self, origin: str) -> RobotFileParser:
        parser = RobotFileParser(origin + "/robots.txt")
        try:
            got = fetch(origin + "/robots.txt", self.policy, max_bytes=ROBOTS_MAX_BYTES)
        except SourceRefused:
            raise
        except FaceIndexError as exc:
            # Unreachable robots.txt: assume the site forbids collection (RFC 9309 2.3.1.4).
            log.warning("robots.txt at %s unreachable (%s): treating as disallow-all", origin, exc)
            parser.disallow_all = True  # type: ignore[attr-defined]
            return parser
        if got.status in (401, 403) or got.status >= 500:
            parser.disallow_all = True  # type: ignore[attr-defined]
        elif got.status >= 400:
            parser.allow_all = True  # type: ignore[attr-defined]
        else:
            parser.parse(got.body.decode("utf-8", errors="replace").splitlines())
        parser.modified()  # can_fetch() answers False until the parser is marked as read
        return parser

    def _record(self, entry: dict[str, object]) -> None:
        if not self.provenance_path:
            return
        entry.setdefault("recorded_at", datetime.now(timezone.utc).isoformat(timespec="seconds"))
        line = json.dumps(entry, sort_keys=True) + "\n"
        path = Path(self.provenance_path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                fh.write(line)
        except OSError as exc:
            log.error("cannot record provenance in %s: %s", path, exc)
