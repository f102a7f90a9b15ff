"""The ImageSource seam and the registered-source record.

A source is something an organisation declared it may hold: an owner, a legal basis, a
retention period. There is no crawler: a source lists exactly the items it holds.
Source objects are plain picklable values, so ingest worker processes can read items.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, runtime_checkable

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageSource",
    "LegalBasis",
    "SourceItem",
    "SourceRecord",
    "has_image_suffix",
    "printable",
]

IMAGE_SUFFIXES = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".webp",
        ".gif",
        ".bmp",
        ".tif",
        ".tiff",
        ".pgm",
        ".ppm",
        ".pbm",
        ".pnm",
    }
)


def has_image_suffix(name: str) -> bool:
    dot = name.rfind(".")
    return dot > name.rfind("/") and name[dot:].lower() in IMAGE_SUFFIXES


def printable(text: str) -> str:
    """``text`` as valid UTF-8 for the catalog and the terminal.

    File names are bytes; Python hands over the ones that are not UTF-8 with lone surrogates
    (``surrogateescape``), which no database or terminal accepts. Those bytes are written
    as ``\\xNN``; a name that is valid UTF-8 comes back unchanged.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode("utf-8", "backslashreplace").decode("utf-8")
        return raw.decode("utf-8", "backslashreplace")


class LegalBasis(str, Enum):
    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal-obligation"
    VITAL_INTERESTS = "vital-interests"
    PUBLIC_TASK = "public-task"
    LEGITIMATE_INTEREST = "legitimate-interest"
    LAW_ENFORCEMENT = "law-enforcement"


@dataclass(frozen=True)
class SourceItem:
    """One entry of a source. ``locator`` is what the catalog and users see (always valid
    UTF-8); ``key`` is how the source finds the entry again when that differs (a file name
    that is not UTF-8). ``skip`` says why an entry is listed but not read (a FIFO, a link
    that is not followed, a file that is no image): it is recorded, never silently dropped."""

    locator: str  # relative path inside the source, or the URL
    size: int | None = None
    mtime: float | None = None
    skip: str | None = None
    key: str | None = None

    @property
    def name(self) -> str:
        """The entry's own name in the source (``key`` when set, else ``locator``)."""
        return self.locator if self.key is None else self.key


@dataclass(frozen=True)
class SourceRecord:
    """A registered source as the catalog holds it."""

    id: int
    name: str
    kind: str  # "folder" | "archive" | "urls"
    uri: str
    owner: str
    legal_basis: str
    legal_reference: str = ""
    purposes: tuple[str, ...] = field(default_factory=tuple)
    retention_days: int = 0
    jurisdiction: str = ""
    created_at: str = ""


@runtime_checkable
class ImageSource(Protocol):
    @property
    def kind(self) -> str: ...

    @property
    def uri(self) -> str: ...

    def items(self) -> Iterator[SourceItem]:
        """Every entry the source holds, in a stable order: the images, and with ``skip``
        set the entries that are not read (and why)."""
        ...

    def read(self, item: SourceItem) -> bytes:
        """The item's bytes; raises ``faceindex.errors.InputError`` subclasses on failure."""
        ...
