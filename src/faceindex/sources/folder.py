"""A folder of images on local disk (or a mounted share), walked recursively."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from faceindex.errors import DecodeError, ImageTooLarge, NotFoundError
from faceindex.sources.base import IMAGE_SUFFIXES, SourceItem

__all__ = ["FolderSource"]


@dataclass(frozen=True)
class FolderSource:
    """Images under ``uri`` (a directory). Symlinks that leave the folder are not followed."""

    uri: str
    max_bytes: int = 64 * 1024 * 1024
    all_files: bool = False  # False: only files with an image extension
    kind: str = "folder"

    @property
    def root(self) -> Path:
        return Path(self.uri)

    def items(self) -> Iterator[SourceItem]:
        root = self.root.resolve()
        if not root.is_dir():
            raise NotFoundError(f"source folder does not exist: {root}")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if not self.all_files and path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                if path.is_symlink() and not path.resolve().is_relative_to(root):
                    continue
                try:
                    st = path.stat()
                except OSError:
                    continue
                yield SourceItem(str(path.relative_to(root)), st.st_size, st.st_mtime)

    def read(self, item: SourceItem) -> bytes:
        root = self.root.resolve()
        path = (root / item.locator).resolve()
        if not path.is_relative_to(root):
            raise DecodeError(f"{item.locator}: resolves outside the source folder")
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise ImageTooLarge(f"file is {size} bytes, over the {self.max_bytes}-byte limit")
            return path.read_bytes()
        except OSError as exc:
            raise DecodeError(f"cannot read {item.locator}: {exc.strerror or exc}") from exc
