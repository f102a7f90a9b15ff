"""One result row per photo group: the nearest face of the group's images stands for them
all, and the row lists every location of every image in the group (the replaced system
listed every page a photo was on). Copies of one photo (re-encoded, resized) would
otherwise fill the top k with the same face several times."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from faceindex.catalog.base import Catalog, FaceRow
from faceindex.types import Provenance

__all__ = ["GroupHit", "collapse"]


@dataclass(frozen=True)
class GroupHit:
    distance: float
    row: FaceRow  # the group's nearest face
    group_id: int | None
    faces: tuple[int, ...]  # every face of the group among the neighbours, nearest first
    locations: tuple[Provenance, ...]  # every location of the group (in the sources searched)


def collapse(
    catalog: Catalog,
    hits: Sequence[tuple[float, FaceRow]],
    sources: Collection[str] | None = None,
) -> list[GroupHit]:
    """Hits (nearest first) folded to one per photo group, in the order of their best."""
    groups = catalog.image_groups(sorted({row.image_id for _, row in hits}))
    order: list[int | None] = []
    best: dict[int | None, tuple[float, FaceRow]] = {}
    faces: dict[int | None, list[int]] = {}
    for d, row in hits:
        key: int | None = groups.get(row.image_id)
        if key is None:  # not grouped (cannot happen after schema v3): a row of its own
            key = -row.image_id
        if key not in best:
            order.append(key)
            best[key] = (d, row)
        faces.setdefault(key, []).append(row.id)
    held = catalog.group_locations([g for g in order if g is not None and g > 0])
    out = []
    for key in order:
        d, row = best[key]
        group = key if key is not None and key > 0 else None
        locations = tuple(held.get(group, ())) if group is not None else ()
        if not locations:  # no group rows: the face's own image's locations
            locations = tuple(row.locations)
        if sources is not None:
            locations = tuple(p for p in locations if p.source in sources)
        out.append(GroupHit(d, row, group, tuple(faces[key]), locations))
    return out
