"""Watchlist rows as the catalog hands them out (schema v3; queries in ``sql_watches.py``).

A watch's templates go in (:class:`NewWatch`) and come back only through
:meth:`Catalog.watch_templates`, which only the ingest screen calls; a :class:`WatchRecord`
says how many there are, never what they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceindex.types import Provenance

__all__ = ["AlertRecord", "NewAlert", "NewWatch", "WATCH_STATES", "WatchRecord", "WatchTemplates"]

# live: screened until it expires; removed: ended by its owner; purged: expired, templates
# gone. A removed or purged watch keeps its row and its alerts (the case file).
WATCH_STATES = ("live", "removed", "purged")


@dataclass(frozen=True)
class NewWatch:
    owner: str
    case_reference: str
    purpose: str
    kind: str  # "photo" (descriptors of probe photos) or "person" (a person's faces)
    model: str  # the model tag the templates were made with
    expires_at: str  # ISO-8601 UTC
    templates: np.ndarray  # (k, dim) float32: one row per descriptor
    qualities: tuple[float, ...]  # one per template: the decision bands use the lower one
    sources: tuple[str, ...] = ()  # empty: every source the purpose allows, at screen time
    probe_sha256: str = ""  # the probe photos' sha256s, space separated (no photo is kept)
    person_id: int | None = None


@dataclass(frozen=True)
class WatchRecord:
    id: int
    owner: str
    case_reference: str
    purpose: str
    kind: str
    person_id: int | None
    probe_sha256: str
    sources: tuple[str, ...]
    model: str
    created_at: str
    expires_at: str
    from_generation: int  # faces the catalog added after this generation are screened
    state: str
    ended_at: str | None
    templates: int  # how many are stored (0 once removed or purged)


@dataclass(frozen=True)
class WatchTemplates:
    vectors: np.ndarray  # (k, dim) float32
    qualities: np.ndarray  # (k,) float


@dataclass(frozen=True)
class NewAlert:
    watch_id: int
    face_id: int
    image_id: int
    image_sha256: str
    locations: tuple[Provenance, ...]  # where the face's image was when it alerted
    distance: float
    band: str  # "match" or "possible"
    stranger_chance: float
    compared: int  # N of the decision: comparisons a stranger could have won


@dataclass(frozen=True)
class AlertRecord:
    id: int
    watch_id: int
    face_id: int
    image_id: int
    image_sha256: str
    locations: tuple[Provenance, ...]
    distance: float
    band: str
    stranger_chance: float
    compared: int
    created_at: str
    audit_seq: int | None  # the audit entry that records it (None until written)
