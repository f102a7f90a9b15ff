"""probe image -> faces -> kNN -> drop deleted / out-of-scope -> matches with provenance."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from faceindex.catalog.base import Catalog, FaceRow
from faceindex.errors import NoFaceError
from faceindex.index.base import VectorIndex
from faceindex.search.groups import GroupHit, collapse
from faceindex.search.scoring import Assessment, Decider
from faceindex.types import DetectedFace, Match, ProbeFace, Provenance, SearchResult

__all__ = ["PUSHDOWN_AFTER", "gallery_size", "group_knn", "judged", "knn", "match_faces"]

PUSHDOWN_AFTER = 1024  # candidates filtered before a restricted search asks the catalog


def knn(
    catalog: Catalog,
    index: VectorIndex,
    vectors: np.ndarray,
    k: int,
    *,
    sources: Collection[str] | None = None,
) -> list[list[tuple[float, FaceRow]]]:
    """The k nearest live faces per query vector, optionally only from the named sources.

    The index may still hold a vector whose face was just deleted; the catalog is the truth,
    so unknown ids are dropped and the search widens until k survive or the index is spent.
    A restricted search first filters the nearest faces of the whole gallery (cheap when the
    sources hold a fair share of it); once that has widened past ``PUSHDOWN_AFTER``
    candidates, the sources are few in the gallery, so their face ids are fetched from the
    catalog and the index searches only those (an approximate index caps how many
    candidates it can return, so widening alone would miss them).
    """
    total = index.count()
    queries = np.atleast_2d(vectors)
    first = min(max(k * 2, k + 16), max(total, 1))
    # One index call for every probe face's first round: a crowd photo's 60 faces cost one
    # pass over the index (and one thread-pool start in FAISS), not 60.
    dist, ids = index.search(queries, first)
    out: list[list[tuple[float, FaceRow]]] = []
    for n, vec in enumerate(queries):
        kept = _live(catalog, dist[n], ids[n], sources)
        if len(kept) < k and first < total:
            kept = _widen(catalog, index, vec, k, first, total, sources)
        out.append(kept[:k])
    return out


def _widen(
    catalog: Catalog,
    index: VectorIndex,
    vec: np.ndarray,
    k: int,
    first: int,
    total: int,
    sources: Collection[str] | None,
) -> list[tuple[float, FaceRow]]:
    """One query's search, widened from the ``first`` candidates that left fewer than k
    live faces, until k survive or the index (or the sources' faces) is spent."""
    within: np.ndarray | None = None
    fetch = first
    while True:
        if sources is not None and within is None and fetch >= PUSHDOWN_AFTER:
            within = catalog.face_ids_in_sources(sources)
            fetch = first
        else:
            fetch = min(fetch * 4, total)
        if within is not None:
            fetch = min(fetch, max(len(within), 1))
        dist, ids = index.search(vec[None, :], fetch, within=within)
        kept = _live(catalog, dist[0], ids[0], sources)
        if len(kept) >= k or fetch >= total or (within is not None and fetch >= len(within)):
            return kept


def _live(
    catalog: Catalog, dist: np.ndarray, ids: np.ndarray, sources: Collection[str] | None
) -> list[tuple[float, FaceRow]]:
    """Hits the catalog still holds (and, if restricted, that a named source locates)."""
    hits = [(float(d), int(i)) for d, i in zip(dist, ids, strict=True) if i >= 0]
    rows = catalog.faces([i for _, i in hits])
    kept = []
    for d, i in hits:
        row = rows.get(i)
        if row is None:
            continue
        if sources is not None and not any(p.source in sources for p in row.locations):
            continue
        kept.append((d, row))
    return kept


def group_knn(
    catalog: Catalog,
    index: VectorIndex,
    vectors: np.ndarray,
    k: int,
    *,
    sources: Collection[str] | None = None,
) -> list[list[GroupHit]]:
    """The k nearest photo groups per query vector (search/groups.py): asks for k faces
    first, and widens only while copies of one photo folded the answer below k groups and
    the gallery has more faces."""
    total = max(index.count(), 1)
    fetch = k
    while True:
        neighbours = knn(catalog, index, vectors, fetch, sources=sources)
        grouped = [collapse(catalog, hits, sources) for hits in neighbours]
        short = any(
            len(g) < k and len(h) >= fetch for g, h in zip(grouped, neighbours, strict=True)
        )
        if not short or fetch >= total:
            return [g[:k] for g in grouped]
        fetch = min(fetch * 4, total)


def gallery_size(catalog: Catalog, sources: Collection[str] | None) -> int:
    """Live faces a search compares the probe with: N of the decision bands."""
    if sources is None:
        return catalog.count_faces()
    return catalog.count_faces_in_sources(sources)


def match_faces(
    catalog: Catalog,
    index: VectorIndex,
    probe_faces: list[DetectedFace],
    *,
    top_k: int,
    decider: Decider,
    sources: Collection[str] | None = None,
    match_quality: float = 0.0,
) -> list[SearchResult]:
    """The top-k photo groups of each probe face (one row per group: its nearest face, with
    every location of the group), each judged against the gallery searched."""
    if not probe_faces:
        raise NoFaceError("no face found in the probe image")
    vectors = np.stack([f.embedding for f in probe_faces]).astype(np.float32)
    neighbours = group_knn(catalog, index, vectors, top_k, sources=sources)
    n = gallery_size(catalog, sources)
    results = []
    for face, hits in zip(probe_faces, neighbours, strict=True):
        matches = []
        q = face.quality.score
        for hit in hits:
            d, row = hit.distance, hit.row
            a = decider.assess(d, n, min(q, row.quality))
            matches.append(
                judged(row, d, a, hit.locations, group_id=hit.group_id, group_faces=hit.faces)
            )
        warnings: tuple[str, ...] = ()
        if q < match_quality:
            warnings = (
                f"probe face quality {q:.2f} is below {match_quality:.2f}: strangers come "
                "this close more often than for good faces, so no result is called a match",
            )
        probe = ProbeFace(face.bbox, q, warnings)
        results.append(SearchResult(probe, tuple(matches), n, decider.match_bound))
    return results


def judged(
    row: FaceRow,
    distance: float,
    a: Assessment,
    locations: tuple[Provenance, ...],
    *,
    group_id: int | None = None,
    group_faces: tuple[int, ...] = (),
) -> Match:
    """A gallery face at ``distance`` with its decision, as every search answers it."""
    return Match(
        face_id=row.id,
        image_id=row.image_id,
        distance=round(distance, 4),
        fmr=float(f"{a.fmr:.4g}"),
        expected_strangers=float(f"{a.expected_strangers:.4g}"),
        stranger_chance=float(f"{a.stranger_chance:.4g}"),
        decision=a.decision,
        bbox=row.bbox,
        quality=row.quality,
        image_sha256=row.image_sha256,
        locations=locations,
        group_id=group_id,
        group_faces=group_faces,
    )
