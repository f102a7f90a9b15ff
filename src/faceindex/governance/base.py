"""Governance values: deletion receipts, suppressions, exports, subject-access holdings.

The pieces, read in order: ``roles`` (who may do what), ``audit`` (the hash-chained log of
what was done), ``store`` (suppressions, receipts, exports, apart from the gallery),
``erasure`` (physical deletion and its re-check), ``screen`` (opt-out matching), ``exports``
(registered CSV exports), and ``service`` (the :class:`Governance` facade every interface
calls: the CLI now, the HTTP API in its own module).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "ExportRecord",
    "GcReport",
    "Holding",
    "Receipt",
    "ReceiptCheck",
    "Suppression",
    "Tombstone",
    "digest_ids",
]


def digest_ids(ids: Iterable[int]) -> str:
    """sha256 over the sorted ids, one per line: lets anyone re-check a receipt's list."""
    text = "\n".join(str(i) for i in sorted(int(i) for i in ids))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Receipt:
    """Proof of one deletion: what, how many, by whom, when, and a digest of the face ids."""

    id: str
    kind: str  # "face" | "image" | "source" | "person" | "opt-out" | "retention" | "replaced"
    target: str  # face/image ids, source name, or the probe's sha256 for a person
    faces_deleted: int
    images_deleted: int
    actor: str
    role: str
    at: str
    faces_digest: str
    reason: str = ""
    exports: tuple[str, ...] = ()  # registered exports holding the deleted data (source)
    audit_seq: int = 0  # 0 until the audit entry is written (the entry carries the digest)
    recovered: bool = False  # completed on a later open, after the erasing process died
    photo_groups: tuple[int, ...] = ()  # photo groups that lost an image or a location
    photo_groups_removed: tuple[int, ...] = ()  # of those, the ones that lost their last image

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["exports"] = list(self.exports)
        data["photo_groups"] = list(self.photo_groups)
        data["photo_groups_removed"] = list(self.photo_groups_removed)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Receipt:
        d = dict(data)
        d["exports"] = tuple(d.get("exports", ()))
        d["photo_groups"] = tuple(int(i) for i in d.get("photo_groups", ()))
        d["photo_groups_removed"] = tuple(int(i) for i in d.get("photo_groups_removed", ()))
        return cls(**d)


@dataclass(frozen=True)
class ReceiptCheck:
    """The outcome of re-checking a receipt: ``ok`` when nothing of it remains."""

    receipt: Receipt
    ok: bool
    faces_remaining: tuple[int, ...] = ()
    images_remaining: tuple[int, ...] = ()
    vectors_remaining: tuple[int, ...] = ()
    probe_matches: tuple[int, ...] = ()  # live faces still matching the person's probe
    probe_checked: bool = False  # False once the receipt's probe template has expired
    digest_ok: bool = True  # the stored list still hashes to the audited digest
    content_held: tuple[int, ...] = ()  # images holding the erased images' bytes again
    problems: tuple[str, ...] = ()
    near_duplicates_held: tuple[int, ...] = ()  # images near an erased one's perceptual hash


@dataclass(frozen=True)
class Tombstone:
    """An erased image's content (sha256) that ingest refuses until lifted. Shown only to
    users who may erase (privacy officer, admin)."""

    sha256: str
    receipt_id: str
    since: str


@dataclass(frozen=True)
class Suppression:
    """An opt-out entry as shown to people: never its templates."""

    id: str
    created_at: str
    actor: str
    reference: str
    templates: int


@dataclass(frozen=True)
class ExportRecord:
    id: str
    at: str
    actor: str
    kind: str  # "results" | "source"
    path: str
    rows: int
    sha256: str
    sources: tuple[str, ...]
    case: str = ""
    purpose: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sources"] = list(self.sources)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportRecord:
        d = dict(data)
        d["sources"] = tuple(d.get("sources", ()))
        return cls(**d)


@dataclass(frozen=True)
class Holding:
    """One thing held about a subject (subject access): where, when, which box."""

    face_id: int
    image_id: int
    distance: float
    box: tuple[int, int, int, int]
    source: str
    locator: str
    ingested_at: str
    image_sha256: str


@dataclass(frozen=True)
class GcReport:
    items_expired: int
    images_deleted: int
    faces_deleted: int
    suppressed_faces_deleted: int
    probes_dropped: int
    receipt_id: str | None = None
    per_source: dict[str, int] = field(default_factory=dict)  # source -> items expired
    unheld_images_deleted: int = 0  # no location held them any more (replaced in place)
    erased_again: int = 0  # images holding tombstoned bytes again (an ingest raced an erasure)
    watches_purged: int = 0  # expired watches whose templates gc deleted (governance/watches)
