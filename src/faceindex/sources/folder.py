"""A folder of images on local disk (or a mounted share), walked recursively.

Every entry under the folder is listed: a regular file that is an image (by its name, or by
its first bytes when the name has no image extension) is read; anything else is listed with
the reason it is skipped, so nothing disappears without a record: FIFOs, sockets and devices
(reading a FIFO would block forever), symlinks that are broken, loop, point at a directory
or leave the folder, directories that cannot be listed, and files that are not images.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from faceindex.errors import DecodeError, ImageTooLarge, NotFoundError
from faceindex.sources.base import SourceItem, has_image_suffix, printable
from faceindex.vision.decode import SNIFF_BYTES, sniff_image

__all__ = ["FolderSource"]

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _entry(
    rel: str, size: int | None = None, mtime: float | None = None, *, skip: str | None = None
) -> SourceItem:
    shown = printable(rel)
    return SourceItem(shown, size, mtime, skip=skip, key=None if shown == rel else rel)


@dataclass(frozen=True)
class FolderSource:
    """Images under ``uri`` (a directory). Symlinks that leave the folder are not followed."""

    uri: str
    max_bytes: int = 64 * 1024 * 1024
    kind: str = "folder"

    @property
    def root(self) -> Path:
        return Path(self.uri)

    def items(self) -> Iterator[SourceItem]:
        root = self.root.resolve()
        if not root.is_dir():
            raise NotFoundError(f"source folder does not exist: {root}")
        unlistable: list[OSError] = []
        for dirpath, dirnames, filenames in os.walk(root, onerror=unlistable.append):
            here = Path(dirpath)
            while unlistable:
                yield self._unlistable(root, unlistable.pop())
            dirnames.sort()
            for name in sorted(dirnames):
                if (here / name).is_symlink():
                    rel = str((here / name).relative_to(root))
                    yield _entry(rel, skip="a symlink to a directory (not followed)")
            for name in sorted(filenames):
                yield self._classify(root, here / name)
        while unlistable:
            yield self._unlistable(root, unlistable.pop())

    def _unlistable(self, root: Path, exc: OSError) -> SourceItem:
        where = Path(os.fsdecode(exc.filename)) if exc.filename else root
        rel = str(where.relative_to(root)) if where.is_relative_to(root) and where != root else "."
        return _entry(rel + "/", skip=f"cannot list the directory: {exc.strerror or exc}")

    def _classify(self, root: Path, path: Path) -> SourceItem:
        rel = str(path.relative_to(root))
        try:
            st = path.lstat()
        except OSError as exc:
            return _entry(rel, skip=f"cannot stat: {exc.strerror or exc}")
        if stat.S_ISLNK(st.st_mode):
            why = _link_problem(root, path)
            if why is not None:
                return _entry(rel, skip=why)
            try:
                st = path.stat()
            except OSError as exc:
                return _entry(rel, skip=f"cannot stat the symlink's target: {exc.strerror or exc}")
        if not stat.S_ISREG(st.st_mode):
            return _entry(rel, st.st_size, st.st_mtime, skip=f"{_kind(st.st_mode)}, not a file")
        if not has_image_suffix(path.name):
            why = self._not_an_image(path, st.st_size)
            if why is not None:
                return _entry(rel, st.st_size, st.st_mtime, skip=why)
        return _entry(rel, st.st_size, st.st_mtime)

    def _not_an_image(self, path: Path, size: int) -> str | None:
        """Why a file without an image extension is not read, or None when its bytes are an
        image (a JPEG called ``noext`` is still a photo)."""
        if size == 0:
            return "no image extension and empty (0 bytes)"
        try:
            head = _read(path, SNIFF_BYTES)
        except OSError as exc:
            return f"cannot read: {exc.strerror or exc}"
        if sniff_image(head) is None:
            return "no image extension and the bytes are no known image format"
        return None

    def read(self, item: SourceItem) -> bytes:
        root = self.root.resolve()
        try:
            path = (root / item.name).resolve(strict=True)
        except RuntimeError as exc:  # Python < 3.13 reports a symlink loop this way
            raise DecodeError(f"{item.locator}: symlink loop") from exc
        except OSError as exc:
            raise DecodeError(f"cannot read {item.locator}: {exc.strerror or exc}") from exc
        if not path.is_relative_to(root):
            raise DecodeError(f"{item.locator}: resolves outside the source folder")
        try:
            return _read(path, self.max_bytes + 1, limit=self.max_bytes)
        except OSError as exc:
            raise DecodeError(f"cannot read {item.locator}: {exc.strerror or exc}") from exc


def _link_problem(root: Path, path: Path) -> str | None:
    """Why a symlink is not followed, or None when it names a file inside the folder."""
    try:
        target = path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13: "Symlink loop from ..."
        return "a symlink loop"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop"
        if exc.errno == errno.ENOENT:
            return "a broken symlink (its target does not exist)"
        return f"a symlink that cannot be followed: {exc.strerror or exc}"
    if not target.is_relative_to(root):
        return "a symlink that leaves the source folder (not followed)"
    if target.is_dir():
        return "a symlink to a directory (not followed)"
    return None


def _read(path: Path, n: int, *, limit: int | None = None) -> bytes:
    """Up to ``n`` bytes of a regular file. Opened non-blocking and checked after opening,
    so a FIFO swapped in after listing cannot hang the reader."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"{_kind(st.st_mode)}, not a file")
        if limit is not None and st.st_size > limit:
            raise ImageTooLarge(f"file is {st.st_size} bytes, over the {limit}-byte limit")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(n)
    finally:
        os.close(fd)
    if limit is not None and len(data) > limit:
        raise ImageTooLarge(f"file grew past the {limit}-byte limit while being read")
    return data
