"""Which new faces alert which watches: the opt-out screen's distance (``screen.py``'s
:func:`~faceindex.governance.screen.min_distances`) and the search's calibrated bands.

A face is screened for a watch only if it came after the watch (``from_generation``) and
its image is located in a source the watch may watch. Its distance to the watch is the
nearest of the watch's templates; it alerts when the :class:`~faceindex.search.scoring.Decider`
puts that distance in ``match`` or ``possible`` for ``N = compared``.

N: a watch is a standing search of its templates over its sources, so a stranger could win
against any of ``templates x faces in those sources``; that is the N the band is judged
against (``watch_compared``). With N = the number of live templates instead, a face would
be judged as if the gallery were only the watchlist: each face's false-alert chance would
be bounded, but over a watch's life the false alerts would grow with every face ingested,
and an alert would say "match" where the same photo searched over the same sources says
"no-match". With this N an alert means what that search would mean.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from faceindex.catalog.base import FaceRow
from faceindex.catalog.watch_rows import NewAlert, WatchRecord, WatchTemplates
from faceindex.governance.screen import min_distances
from faceindex.search.scoring import Assessment, Decider

__all__ = ["ALERT_BANDS", "NewFace", "Screened", "alerts_for", "watch_compared"]

ALERT_BANDS = ("match", "possible")


@dataclass(frozen=True)
class NewFace:
    row: FaceRow
    generation: int  # the catalog generation that added it
    vector: np.ndarray


@dataclass(frozen=True)
class Screened:
    """A live watch ready to screen: its templates and the sources it covers."""

    watch: WatchRecord
    templates: WatchTemplates
    scope: frozenset[str] | None  # source names; None: every source
    compared: int  # N of the decision bands (watch_compared)


def watch_compared(templates: int, gallery: int) -> int:
    """Comparisons a stranger could win: every template against every face in scope."""
    return max(1, templates) * max(1, gallery)


def _beyond_every_band(judged: Assessment, d: Decider) -> bool:
    """Neither band at any quality: both rates only grow with distance, so no face farther
    away can alert either (the screen then assesses only the few near faces, not all)."""
    possible = judged.expected_strangers <= d.possible_strangers and judged.fmr <= d.possible_fmr
    return judged.stranger_chance >= d.match_bound and not possible


def _in_scope(row: FaceRow, scope: Collection[str] | None) -> bool:
    return scope is None or any(p.source in scope for p in row.locations)


def alerts_for(
    faces: Sequence[NewFace], watches: Sequence[Screened], decider: Decider
) -> list[NewAlert]:
    """Every (watch, face) pair whose band is ``match`` or ``possible``."""
    out: list[NewAlert] = []
    if not faces:
        return out
    vecs = np.stack([f.vector for f in faces]).astype(np.float32)
    generations = np.asarray([f.generation for f in faces])
    in_scope: dict[frozenset[str] | None, np.ndarray] = {}  # few distinct scopes per batch
    for w in watches:
        if w.scope not in in_scope:
            in_scope[w.scope] = np.asarray([_in_scope(f.row, w.scope) for f in faces])
        mine = np.flatnonzero(in_scope[w.scope] & (generations > w.watch.from_generation))
        if not len(mine):
            continue
        sub = vecs if len(mine) == len(faces) else vecs[mine]
        per_template = np.stack(
            [min_distances(sub, t[None, :]) for t in w.templates.vectors], axis=1
        )
        nearest = per_template.argmin(axis=1)
        closest = per_template[np.arange(len(mine)), nearest]
        for i in np.argsort(closest, kind="stable"):  # nearest first: stop past the bands
            face, best, distance = faces[int(mine[i])], int(nearest[i]), float(closest[i])
            quality = min(face.row.quality, float(w.templates.qualities[best]))
            judged = decider.assess(distance, w.compared, quality)
            if judged.decision not in ALERT_BANDS:
                if _beyond_every_band(judged, decider):
                    break
                continue
            out.append(
                NewAlert(
                    watch_id=w.watch.id,
                    face_id=face.row.id,
                    image_id=face.row.image_id,
                    image_sha256=face.row.image_sha256,
                    locations=tuple(
                        p for p in face.row.locations if w.scope is None or p.source in w.scope
                    ),
                    distance=round(distance, 4),
                    band=judged.decision,
                    stranger_chance=float(f"{judged.stranger_chance:.4g}"),
                    compared=w.compared,
                )
            )
    return out
