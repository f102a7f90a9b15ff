"""A zip or tar archive of images, read in place (nothing is extracted to disk).

An archive is refused as a whole (:class:`~faceindex.errors.SourceRefused`) when any member
name is absolute, climbs out with ``..``, uses backslashes or drive letters, or when a
member is a link, device or FIFO: such an archive was built to escape a folder, and we do
not guess which of its members are honest. Limits: members, bytes per member (the file
limit) and total uncompressed bytes, checked against the declared sizes and again while
reading, since declared sizes can lie.
"""

from __future__ import annotations

import functools
import posixpath
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from faceindex.errors import DecodeError, ImageTooLarge, NotFoundError, SourceRefused
from faceindex.sources.base import IMAGE_SUFFIXES, SourceItem

__all__ = ["ARCHIVE_SUFFIXES", "ArchiveSource", "is_archive", "scan_archive"]

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and (name.endswith(ARCHIVE_SUFFIXES) or zipfile.is_zipfile(path))


def _unsafe_name(name: str) -> str | None:
    if not name or "\x00" in name:
        return "empty or NUL in name"
    if "\\" in name:
        return "backslash in name"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in name.split("/"):
        return "'..' in path"
    if posixpath.normpath(name).startswith(".."):
        return "escapes the archive root"
    return None


@dataclass(frozen=True)
class Member:
    name: str
    size: int


def scan_archive(path: Path, *, max_members: int, max_total: int, max_bytes: int) -> list[Member]:
    """Every image member, checked; raises SourceRefused for an unsafe archive."""
    try:
        entries = _zip_entries(path) if zipfile.is_zipfile(path) else _tar_entries(path)
    except FileNotFoundError as exc:
        raise NotFoundError(f"archive not found: {path}") from exc
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise SourceRefused(f"{path}: not a readable zip or tar archive: {exc}") from exc
    if len(entries) > max_members:
        raise SourceRefused(f"{path}: {len(entries)} members, over the {max_members} limit")
    members, total = [], 0
    for name, size, kind in entries:
        why = _unsafe_name(name)
        if why is not None:
            raise SourceRefused(f"{path}: member {name!r} refused ({why})")
        if kind == "dir":
            continue
        if kind != "file":
            raise SourceRefused(f"{path}: member {name!r} is a {kind}, not a regular file")
        total += size
        if total > max_total:
            raise SourceRefused(f"{path}: over {max_total} uncompressed bytes")
        if posixpath.splitext(name)[1].lower() in IMAGE_SUFFIXES and size <= max_bytes:
            members.append(Member(name, size))
    return sorted(members, key=lambda m: m.name)


def _zip_entries(path: Path) -> list[tuple[str, int, str]]:
    out = []
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            mode = (info.external_attr >> 16) & 0o170000
            kind = "dir" if info.is_dir() else "link" if mode == 0o120000 else "file"
            out.append((info.filename, info.file_size, kind))
    return out


def _tar_entries(path: Path) -> list[tuple[str, int, str]]:
    out = []
    with tarfile.open(path, "r:*") as tf:
        for info in tf:
            kind = (
                "file"
                if info.isreg()
                else "dir"
                if info.isdir()
                else "link"
                if info.issym() or info.islnk()
                else "device or fifo"
            )
            out.append((info.name, info.size, kind))
    return out


@functools.lru_cache(maxsize=4)
def _open_tar(
    path: str, mtime: float
) -> tuple[tarfile.TarFile, dict[str, tarfile.TarInfo], threading.Lock]:
    # Kept open per process: batches read members in order, so a compressed tar is
    # decompressed forward once instead of from the start for every member.
    tf = tarfile.open(path, "r:*")  # noqa: SIM115 - cached open on purpose
    return tf, {m.name: m for m in tf.getmembers() if m.isreg()}, threading.Lock()


@dataclass(frozen=True)
class ArchiveSource:
    uri: str  # the archive file
    max_bytes: int = 64 * 1024 * 1024
    max_members: int = 100_000
    max_total_bytes: int = 20 * 1024**3
    kind: str = "archive"

    def items(self) -> Iterator[SourceItem]:
        path = Path(self.uri)
        mtime = path.stat().st_mtime if path.exists() else None
        for m in scan_archive(
            path,
            max_members=self.max_members,
            max_total=self.max_total_bytes,
            max_bytes=self.max_bytes,
        ):
            yield SourceItem(m.name, m.size, mtime)

    def read(self, item: SourceItem) -> bytes:
        if _unsafe_name(item.locator) is not None:
            raise DecodeError(f"{item.locator}: unsafe member name")
        path = Path(self.uri)
        try:
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as zf, zf.open(item.locator) as fh:
                    data = fh.read(self.max_bytes + 1)
            else:
                tf, members, lock = _open_tar(str(path), path.stat().st_mtime)
                info = members.get(item.locator)
                with lock:
                    member = tf.extractfile(info) if info is not None else None
                    if member is None:
                        raise DecodeError(f"{item.locator}: not a regular file in {path.name}")
                    data = member.read(self.max_bytes + 1)
        except (OSError, KeyError, tarfile.TarError, zipfile.BadZipFile) as exc:
            raise DecodeError(f"cannot read {item.locator} from {path.name}: {exc}") from exc
        if len(data) > self.max_bytes:
            raise ImageTooLarge(f"{item.locator}: over the {self.max_bytes}-byte limit")
        return data
