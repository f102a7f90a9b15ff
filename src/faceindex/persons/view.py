"""A person as users see it (its faces with their locations), and the one plain-data shape
the CLI's --json and the HTTP API return for it (``server/schemas.py`` mirrors it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from faceindex.catalog.base import FaceRow
from faceindex.persons.base import Person
from faceindex.search.case_result import provenance_dict

__all__ = ["BuildReport", "FaceLinks", "PersonView", "person_dict"]

FaceLinks = Callable[[int], str | None]  # face id -> thumbnail URL (None: none)


@dataclass(frozen=True)
class PersonView:
    person: Person
    faces: tuple[FaceRow, ...]  # the person's live faces, by id

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(sorted({p.source for f in self.faces for p in f.locations}))


@dataclass(frozen=True)
class BuildReport:
    method: str
    rebuild: bool
    faces_placed: int  # faces the build considered (in no person, or every unpinned one)
    links: int  # links of the kNN graph within the edge distance
    persons_created: int
    persons_joined: int  # existing persons that gained faces
    persons: int  # persons after the build
    edge: float
    gate: float


def _no_links(_face_id: int) -> str | None:
    return None


def person_dict(view: PersonView, links: FaceLinks = _no_links) -> dict[str, object]:
    p = view.person
    return {
        "id": p.id,
        "label": p.label,
        "labelled_by": p.labelled_by,
        "representative": p.representative,
        "representative_url": None if p.representative is None else links(p.representative),
        "face_count": len(view.faces),
        "sources": list(view.sources),
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "faces": [
            {
                "face_id": f.id,
                "image_id": f.image_id,
                "image_sha256": f.image_sha256,
                "box": f.bbox.as_list(),
                "quality": f.quality,
                "thumbnail_url": links(f.id),
                "provenance": [provenance_dict(loc) for loc in f.locations],
            }
            for f in view.faces
        ],
    }
