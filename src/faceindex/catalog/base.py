"""The Catalog seam: the source of truth for sources, images, their locations and faces.

Implementations: SQLite (embedded default, WAL, one writer) and PostgreSQL. The vector index
holds only (face id, vector); everything a user sees comes from here, and the index can be
rebuilt from :meth:`Catalog.iter_embeddings`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import numpy as np

from faceindex.catalog.watch_rows import (
    AlertRecord,
    NewAlert,
    NewWatch,
    WatchRecord,
    WatchTemplates,
)
from faceindex.persons.base import Membership, Person, Placement
from faceindex.sources.base import SourceRecord
from faceindex.types import BBox, DetectedFace, Provenance, Review

__all__ = [
    "Catalog",
    "CatalogChanges",
    "ErasedRows",
    "FaceRow",
    "ImageOutcome",
    "NewReview",
    "NewSource",
    "SCHEMA_VERSION",
]

SCHEMA_VERSION = 6


@dataclass(frozen=True)
class NewSource:
    name: str
    kind: str
    uri: str
    owner: str
    legal_basis: str
    retention_days: int
    legal_reference: str = ""
    purposes: tuple[str, ...] = ()
    jurisdiction: str = ""


@dataclass(frozen=True)
class ImageOutcome:
    """What a worker learned about one item; the catalog records it in one transaction."""

    source_id: int
    locator: str
    size: int | None
    mtime: float | None
    sha256: str | None
    width: int = 0
    height: int = 0
    faces: tuple[DetectedFace, ...] = ()
    error: str | None = None  # set for a failed item (or, with skipped, why it was skipped)
    below_floor: int = 0  # faces found but under Settings.quality_floor (not recorded)
    skipped: bool = False  # listed by the source but not an image to read (error says why)
    phash: int | None = None  # perceptual hash (vision/phash.py): links its photo group


@dataclass(frozen=True)
class NewReview:
    """A review decision to record (catalog/sql_reviews.py adds its id and time)."""

    search_id: str
    case_reference: str
    face_id: int
    decision: str
    note: str
    reviewer: str
    role: str


@dataclass(frozen=True)
class FaceRow:
    """A face as shown to users: no embedding."""

    id: int
    image_id: int
    image_sha256: str
    bbox: BBox
    quality: float
    model: str
    created_at: str
    deleted: bool
    locations: tuple[Provenance, ...]


@dataclass(frozen=True)
class ErasedRows:
    """What one erasure removed from the catalog."""

    image_ids: tuple[int, ...]
    face_ids: tuple[int, ...]
    items: int  # locations removed
    groups: tuple[int, ...] = ()  # photo groups that lost an image or a location
    groups_removed: tuple[int, ...] = ()  # of those, the ones that lost their last image


@dataclass(frozen=True)
class CatalogChanges:
    """The faces added and removed after one generation, up to ``generation``.

    ``complete`` is false when the catalog cannot say (the generation asked about is not
    one this catalog has reached); the caller then compares every id."""

    generation: int
    added: np.ndarray  # ids of live faces added in between, sorted
    removed: np.ndarray  # ids removed in between (some may never have been indexed)
    complete: bool = True


@runtime_checkable
class Catalog(Protocol):
    def close(self) -> None: ...

    # sources
    def add_source(self, src: NewSource) -> SourceRecord: ...
    def get_source(self, name: str) -> SourceRecord: ...
    def list_sources(self) -> list[SourceRecord]: ...

    # ingest
    def seen_items(self, source_id: int) -> dict[str, tuple[int | None, float | None]]:
        """locator -> (size, mtime) of every item already recorded (done or failed)."""
        ...

    def record(self, outcomes: Sequence[ImageOutcome], model: str) -> list[tuple[int, np.ndarray]]:
        """Record a batch in one transaction; returns (face id, vector) of the new faces.

        Bytes already catalogued (same sha256) gain a location and no new faces.
        """
        ...

    # reads
    def faces(self, ids: Sequence[int]) -> dict[int, FaceRow]:
        """Live (not deleted) faces by id, with their provenance; unknown ids are absent."""
        ...

    def thumbnail(self, face_id: int) -> bytes: ...
    def iter_embeddings(self, batch: int = 10000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of every live face, in id order."""
        ...

    def live_face_ids(self) -> np.ndarray: ...
    def face_ids_in_sources(self, names: Collection[str]) -> np.ndarray:
        """Sorted ids of the live faces of images located in any of the named sources
        (what a search restricted to those sources may return)."""
        ...

    def count_faces_in_sources(self, names: Collection[str]) -> int:
        """How many ids :meth:`face_ids_in_sources` would return, without fetching them."""
        ...

    def count_faces(self) -> int: ...

    # changes, for other processes' indexes (one generation per write transaction)
    def generation(self) -> int:
        """The generation of the last committed write (one cheap read)."""
        ...

    def changes_since(self, generation: int, *, include_own: bool = False) -> CatalogChanges:
        """What changed after ``generation``. Unless ``include_own``, leaves out the changes
        this catalog object wrote itself (its callers applied those to their index)."""
        ...

    def stats(self) -> dict[str, int]: ...
    def failures(
        self, source_id: int | None = None, *, skipped: bool = False
    ) -> list[tuple[str, str, str]]:
        """(source name, locator, reason) of every failed item (``skipped``: of every item
        listed but not read, e.g. a FIFO or a file that is no image)."""
        ...

    # deletion
    def delete_faces(self, ids: Sequence[int]) -> int:
        """Remove faces (rows, vectors' source, thumbnails) physically; returns how many."""
        ...

    # erasure, retention, subject access (catalog/sql_erase.py). An image lives while an
    # item (a location in a source) points at it; with its last item go its faces and row.
    def face_ids_of_images(self, image_ids: Sequence[int]) -> list[int]: ...
    def embeddings(self, face_ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Stored vectors of live faces (internal: opt-out screening, never to users)."""
        ...

    def image_ids_of_source(self, source_id: int) -> list[int]: ...
    def unheld_images(self) -> list[int]:
        """Images no item points at any more (the file at their location was replaced by new
        bytes): held for no source, so ``gc`` erases them with a receipt."""
        ...

    def existing_images(self, image_ids: Sequence[int]) -> list[int]: ...
    def image_digests(self, image_ids: Sequence[int]) -> dict[int, str]:
        """image id -> sha256 of the images still held (erasure tombstones)."""
        ...

    def images_holding(self, digests: Collection[str]) -> dict[str, int]:
        """sha256 -> image id for the digests some image holds (erase verify)."""
        ...

    def expired_items(self, now: datetime | None = None) -> list[tuple[int, str]]:
        """(item id, source name) of every item held longer than its source's retention."""
        ...

    def delete_items(self, item_ids: Sequence[int]) -> ErasedRows: ...
    def delete_images(self, image_ids: Sequence[int]) -> ErasedRows:
        """Images with every face and every location of them, whatever the source."""
        ...

    def delete_source(self, source_id: int) -> ErasedRows:
        """The source, its items, and the images no other source still holds."""
        ...

    def checkpoint(self) -> None:
        """Make physical deletes final (SQLite: fold and truncate the WAL; PG: VACUUM)."""
        ...

    # persons (schema v3, catalog/sql_persons.py). After every write a person has at least
    # one face (one left with none is deleted, erasure included) and a representative of
    # its own.
    def persons(self, ids: Sequence[int] | None = None) -> list[Person]:
        """Persons by id (all of them when ``ids`` is None), ascending; unknown ids absent."""
        ...

    def person_memberships(self) -> dict[int, Membership]:
        """face id -> the person it belongs to, for every face in a person."""
        ...

    def assign_persons(
        self,
        placements: Sequence[Placement],
        *,
        pinned: bool = False,
        drop_unpinned: bool = False,
    ) -> list[int]:
        """In one transaction: (``drop_unpinned``: clear every membership no user made,
        then) put each placement's faces into its person (None: a new one), moving them out
        of any other; returns the person id of each placement."""
        ...

    def label_person(self, person_id: int, label: str, by: str) -> None:
        """Name a person (a name or a case label); NotFoundError if there is none."""
        ...

    # watchlists (schema v4, catalog/sql_watches.py; governance/watches.py uses them)
    def add_watch(self, new: NewWatch) -> WatchRecord:
        """Store a live watch and its templates; it screens faces added after now."""
        ...

    def watches(
        self, ids: Sequence[int] | None = None, *, owner: str | None = None
    ) -> list[WatchRecord]: ...
    def watch_templates(self, watch_ids: Sequence[int]) -> dict[int, WatchTemplates]:
        """Internal: the ingest screen's, never to users."""
        ...

    def end_watch(self, watch_id: int, state: str) -> bool:
        """``removed`` or ``purged``: templates deleted, row and alerts kept."""
        ...

    def watch_cursor(self) -> int:
        """The generation up to which new faces have been screened against watches."""
        ...

    def advance_watch_cursor(self, generation: int) -> None: ...
    def faces_added_between(self, after: int, upto: int) -> list[tuple[int, int]]:
        """(face id, generation) of live faces added in (after, upto]."""
        ...

    def add_alerts(self, alerts: Sequence[NewAlert]) -> list[AlertRecord]:
        """Record alerts; returns the new ones (one per watch and face)."""
        ...

    def alerts(
        self,
        watch_ids: Sequence[int] | None = None,
        *,
        ids: Sequence[int] | None = None,
        unaudited: bool = False,
    ) -> list[AlertRecord]: ...
    def set_alert_audit(self, alert_id: int, seq: int) -> None: ...
    # photo groups (catalog/sql_groups.py): near-duplicate images linked by their
    # perceptual hash at ``record``; every image in exactly one group; a group goes with
    # its last image.
    def near_images(self, phash: int, max_bits: int = ...) -> list[tuple[int, int]]:
        """(image id, Hamming distance) of the held images whose perceptual hash lies
        within ``max_bits`` (default: the hash's own threshold), nearest first."""
        ...

    def image_groups(self, image_ids: Sequence[int]) -> dict[int, int]:
        """image id -> photo group id, for the images still held."""
        ...

    def group_images(self, group_ids: Sequence[int]) -> dict[int, list[int]]:
        """photo group id -> its image ids (in id order), for the groups still held."""
        ...

    def group_locations(self, group_ids: Sequence[int]) -> dict[int, list[Provenance]]:
        """photo group id -> every location of every image in it, each naming its image."""
        ...

    def image_hashes(self, image_ids: Sequence[int]) -> dict[int, int]:
        """image id -> perceptual hash, for held images that have one (erasure tombstones)."""
        ...

    def count_groups(self) -> int: ...
    # review decisions on search candidates (catalog/sql_reviews.py)
    def add_review(self, review: NewReview) -> Review:
        """Record one decision (never overwrites: the latest per face and case counts)."""
        ...

    def reviews(self, case_reference: str, face_ids: Sequence[int] | None = None) -> list[Review]:
        """Every decision of a case (optionally on those faces only), oldest first."""
        ...
