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
from faceindex.search.scoring import Decider

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


def _in_scope(row: FaceRow, scope: Collection[str] | None) -> bool:
    return scope is None or any(p.source in scope for p in row.locations)


def alerts_for(
    faces: Sequence[NewFace], watches: Sequence[Screened], decider: Decider
) -> list[NewAlert]:
    """Every (watch, face) pair whose band is ``match`` or ``possible``."""
    out: list[NewAlert] = []
    for w in watches:
        mine = [
            f for f in faces if f.generation > w.watch.from_generation and _in_scope(f.row, w.scope)
        ]
        if not mine:
            continue
        vecs = np.stack([f.vector for f in mine]).astype(np.float32)
        per_template = np.stack(
            [min_distances(vecs, t[None, :]) for t in w.templates.vectors], axis=1
        )
        nearest = per_template.argmin(axis=1)
        for face, best, dists in zip(mine, nearest, per_template, strict=True):
            distance = float(dists[best])
            quality = min(face.row.quality, float(w.templates.qualities[best]))
            judged = decider.assess(distance, w.compared, quality)
            if judged.decision not in ALERT_BANDS:
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
