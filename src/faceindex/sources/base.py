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

__all__ = ["IMAGE_SUFFIXES", "ImageSource", "LegalBasis", "SourceItem", "SourceRecord"]

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
    locator: str  # relative path inside the source, or the URL
    size: int | None = None
    mtime: float | None = None


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
        """Every image the source holds, in a stable order."""
        ...

    def read(self, item: SourceItem) -> bytes:
        """The item's bytes; raises ``faceindex.errors.InputError`` subclasses on failure."""
        ...
