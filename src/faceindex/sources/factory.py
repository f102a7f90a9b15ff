"""Which kind of source a path is, and the source object for a registered archive or URL list.

Called from :mod:`faceindex.engine` (the composition root) so that the settings reach the
archive limits and the network policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from faceindex.config import Settings
from faceindex.errors import ConfigError, InputError
from faceindex.sources.base import ImageSource, SourceRecord

if TYPE_CHECKING:
    from faceindex.sources.netguard import NetPolicy

__all__ = ["URL_LIST_SUFFIXES", "build_governed_source", "net_policy", "source_kind"]

URL_LIST_SUFFIXES = (".txt", ".urls", ".lst", ".list")


def net_policy(settings: Settings) -> NetPolicy:
    from faceindex.sources.netguard import NetPolicy

    return NetPolicy(
        deny_domains=tuple(settings.url_deny_domains),
        allow=tuple(settings.url_allow),
        user_agent=settings.url_user_agent,
        timeout_s=settings.url_timeout_s,
        max_bytes=settings.max_bytes,
        max_redirects=settings.url_max_redirects,
    )


def source_kind(path: Path, settings: Settings) -> str:
    """``folder``, ``archive`` or ``urls`` for a path being registered; refuses unsafe ones."""
    from faceindex.sources.archive import is_archive, scan_archive

    if path.is_dir():
        return "folder"
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    if is_archive(path):
        scan_archive(
            path,
            max_members=settings.archive_max_members,
            max_total=settings.archive_max_total_bytes,
        )
        return "archive"
    if path.name.lower().endswith(URL_LIST_SUFFIXES):
        _check_url_list(path, settings)
        return "urls"
    raise InputError(
        f"{path}: not a folder, a zip/tar archive, or a URL list ({', '.join(URL_LIST_SUFFIXES)})"
    )


def _check_url_list(path: Path, settings: Settings) -> None:
    """Refuse a list naming deny-listed domains or non-http URLs up front (no network)."""
    from faceindex.sources.netguard import check_listed
    from faceindex.sources.urllist import read_url_list

    urls = read_url_list(path)
    if not urls:
        raise InputError(f"{path} lists no URLs")
    policy = net_policy(settings)
    for url in urls:
        check_listed(url, policy)  # the host as the resolver reads it, as at fetch time


def build_governed_source(record: SourceRecord, settings: Settings) -> ImageSource:
    if record.kind == "archive":
        from faceindex.sources.archive import ArchiveSource

        archive = ArchiveSource(
            record.uri,
            max_bytes=settings.max_bytes,
            max_members=settings.archive_max_members,
            max_total_bytes=settings.archive_max_total_bytes,
        )
        return cast(ImageSource, archive)
    if record.kind == "urls":
        from faceindex.sources.urllist import UrlListSource

        provenance = settings.home / "provenance" / f"{record.name}.jsonl"
        return cast(ImageSource, UrlListSource(record.uri, net_policy(settings), str(provenance)))
    raise ConfigError(f"source {record.name!r} has unknown kind {record.kind!r}")
