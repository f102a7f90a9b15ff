"""Search by a template: several descriptors of one person (several probe photos, or a
person's faces) searched as one.

Fusion decides the *order* of the candidates:

- ``best-of``: a gallery face scores its smallest distance to any of the m descriptors;
- ``mean``: it scores its distance to the template's mean descriptor (unit-normalised again
  where the model's descriptors are unit vectors, as a cosine pack's are).

The *decision* is the same for both, and stays honest: the calibration gives the false-match
rate of one comparison of two single descriptors. A gallery face that is compared with m
descriptors and kept at the closest has up to m chances to come close by accident, so
(``1 - (1 - fmr)^m <= m * fmr``) the bands are computed on the smallest of the m distances
with ``N * m`` comparisons, as if the gallery were m times larger. A mean descriptor has no
calibration of its own (averaging pulls strangers' distances in as well as the person's),
so its distance orders the list and is never what a band is read from. Each result carries
a warning saying so, and ``gallery_size`` is the ``N * m`` the bands used.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

import numpy as np

from faceindex.catalog.base import Catalog, FaceRow
from faceindex.errors import InputError, NoFaceError
from faceindex.index.base import VectorIndex
from faceindex.search.scoring import Decider
from faceindex.search.searcher import gallery_size, judged, knn
from faceindex.types import BBox, ProbeFace, SearchResult

__all__ = ["FUSIONS", "TEMPLATE_MAX", "Fusion", "fuse_mean", "match_template", "pick_template"]

Fusion = Literal["best-of", "mean"]
FUSIONS: tuple[Fusion, ...] = ("best-of", "mean")
# A person's template is at most this many of its best faces: each one is a kNN query and
# multiplies the comparisons the bands count (rank-1 gains level off by 3 photos,
# docs/BENCHMARKS.md), so a person of 500 faces should not cost 500 searches.
TEMPLATE_MAX = 16


def pick_template(qualities: dict[int, float], limit: int = TEMPLATE_MAX) -> list[int]:
    """The ids of the ``limit`` best faces (quality, then id), in id order."""
    best = sorted(qualities, key=lambda f: (-qualities[f], f))[:limit]
    return sorted(best)


def fuse_mean(vectors: np.ndarray, *, normalise: bool) -> np.ndarray:
    """The template's mean descriptor (unit length again when the model's are unit)."""
    mean = np.asarray(vectors, dtype=np.float64).mean(axis=0)
    if normalise:
        mean = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return mean.astype(np.float32)


def _candidates(
    catalog: Catalog,
    index: VectorIndex,
    template: np.ndarray,
    k: int,
    fusion: Fusion,
    sources: Collection[str] | None,
    exclude: Collection[int],
    normalise: bool,
) -> list[tuple[float, FaceRow]]:
    """(fused score, row) of the best k candidates, template faces left out."""
    want = k + len(exclude)
    queries = template if fusion == "best-of" else fuse_mean(template, normalise=normalise)[None]
    rows: dict[int, FaceRow] = {}
    for hits in knn(catalog, index, queries, want, sources=sources):
        for _d, row in hits:
            rows.setdefault(row.id, row)
    if fusion == "mean":
        # Candidates of each descriptor as well: a mate close to one photo only still counts.
        for hits in knn(catalog, index, template, want, sources=sources):
            for _d, row in hits:
                rows.setdefault(row.id, row)
    for face in exclude:
        rows.pop(int(face), None)
    if not rows:
        return []
    ids = sorted(rows)
    stored = catalog.embeddings(ids)
    ids = [i for i in ids if i in stored]
    if not ids:
        return []
    gallery = np.stack([stored[i] for i in ids]).astype(np.float64)
    scores = np.linalg.norm(gallery[:, None, :] - queries[None, :, :], axis=2).min(axis=1)
    order = np.argsort(scores, kind="stable")[:k]
    return [(float(scores[i]), rows[ids[i]]) for i in order]


def _searched(catalog: Catalog, faces: Collection[int], sources: Collection[str] | None) -> int:
    """How many of ``faces`` the search would compare with (they are left out of N)."""
    if not faces:
        return 0
    if sources is None:
        return len(catalog.faces(list(faces)))
    return len(set(catalog.face_ids_in_sources(sources).tolist()) & {int(f) for f in faces})


def match_template(
    catalog: Catalog,
    index: VectorIndex,
    template: np.ndarray,
    *,
    qualities: list[float],
    top_k: int,
    decider: Decider,
    fusion: Fusion = "best-of",
    sources: Collection[str] | None = None,
    exclude: Collection[int] = (),
    normalise: bool = False,
    match_quality: float = 0.0,
    box: BBox | None = None,
) -> SearchResult:
    """One result for the whole template (see the module docstring for the bands)."""
    if fusion not in FUSIONS:
        raise InputError(f"fusion is one of {', '.join(FUSIONS)}, not {fusion!r}")
    template = np.atleast_2d(np.asarray(template, dtype=np.float32))
    m = len(template)
    if m == 0:
        raise NoFaceError("a template needs at least one face")
    hits = _candidates(catalog, index, template, top_k, fusion, sources, exclude, normalise)
    n = gallery_size(catalog, sources) - _searched(catalog, exclude, sources)
    comparisons = max(0, n) * m
    ids = [row.id for _s, row in hits]
    stored = catalog.embeddings(ids)
    q = min(qualities) if qualities else 1.0
    matches = []
    for _score, row in hits:
        vec = stored.get(row.id)
        if vec is None:
            continue
        d = float(np.linalg.norm(template.astype(np.float64) - vec, axis=1).min())
        a = decider.assess(d, comparisons, min(q, row.quality))
        where = tuple(p for p in row.locations if sources is None or p.source in sources)
        matches.append(judged(row, d, a, where))
    warnings = [
        f"template of {m} faces ({fusion}): each gallery face is compared with all {m}; the "
        f"distance shown is the closest of them and the bands count {m} x {max(n, 0):,} "
        "comparisons"
    ]
    if q < match_quality:
        warnings.append(
            f"template face quality {q:.2f} is below {match_quality:.2f}: strangers come "
            "this close more often than for good faces, so no result is called a match"
        )
    probe = ProbeFace(box or BBox(0, 0, 0, 0), q, tuple(warnings))
    return SearchResult(probe, tuple(matches), comparisons, decider.match_bound)
