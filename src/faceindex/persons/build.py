"""Placing faces into persons: the kNN graph from the vector index, then a clustering.

:func:`plan` is the whole algorithm, for a first build, an incremental one (only the faces
in no person are placed; the others stay where they are and act as seeds) and a rebuild
(every face a user did not place is clustered afresh; a new cluster takes back the id, and
so the label, of the old person it overlaps most, when that person kept no pinned face).

Each face to place asks the index for its ``neighbours`` nearest faces; a link is kept when
the pair is at most ``policy.edge`` apart. The graph's nodes are the faces to place and the
already-placed faces they link to (with links among those of one person, so a person acts
as one group). After clustering, a cluster holding placed faces joins their person (the one
with most of them); a cluster of new faces only becomes a new person.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from faceindex.catalog.base import Catalog
from faceindex.index.base import VectorIndex
from faceindex.persons.base import ClusterPolicy, Method, Placement
from faceindex.persons.cluster import Graph, cluster, groups_of
from faceindex.vision.calibration import Calibration

__all__ = ["Plan", "neighbour_links", "plan", "policy_for"]

log = logging.getLogger(__name__)

BATCH = 2048  # queries per index search


def policy_for(
    calibration: Calibration,
    method: Method,
    neighbours: int,
    *,
    link_fmr: float,
    gate_fmr: float,
) -> ClusterPolicy:
    """The clustering in the model's own distances, read from its calibration: two faces
    are linked when a stranger comes that close at most ``link_fmr`` of the time, and (gated
    components) two groups join only while their means are within the ``gate_fmr`` distance
    (see docs/BENCHMARKS.md for how the defaults were chosen)."""
    return ClusterPolicy(
        method=method,
        edge=round(calibration.distance_for_fmr(link_fmr), 4),
        gate=round(calibration.distance_for_fmr(gate_fmr), 4),
        neighbours=neighbours,
    )


@dataclass(frozen=True)
class Plan:
    placements: tuple[Placement, ...]
    drop_unpinned: bool  # a rebuild: memberships no user made are cleared first
    faces_considered: int
    links: int


def _vectors(catalog: Catalog, wanted: set[int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, vectors) of the wanted live faces, in id order, a batch at a time."""
    for ids, vecs in catalog.iter_embeddings():
        keep = np.fromiter((int(i) in wanted for i in ids), dtype=bool, count=len(ids))
        if keep.any():
            yield ids[keep], vecs[keep]


def neighbour_links(
    index: VectorIndex, ids: np.ndarray, vectors: np.ndarray, k: int, edge: float
) -> Iterator[tuple[int, int, float]]:
    """(face, neighbour, distance) for each face's k nearest others at most ``edge`` away."""
    fetch = min(k + 1, max(index.count(), 1))
    for start in range(0, len(ids), BATCH):
        dist, hits = index.search(vectors[start : start + BATCH], fetch)
        for row, face in enumerate(ids[start : start + BATCH].tolist()):
            for d, other in zip(dist[row].tolist(), hits[row].tolist(), strict=True):
                if other >= 0 and other != face and d <= edge:
                    yield int(face), int(other), float(d)


def plan(
    catalog: Catalog,
    index: VectorIndex,
    policy: ClusterPolicy,
    *,
    rebuild: bool = False,
    normalise: bool = False,
) -> Plan:
    members = catalog.person_memberships()
    live = {int(i) for i in catalog.live_face_ids().tolist()}
    if rebuild:
        fixed = {f: m.person_id for f, m in members.items() if m.pinned and f in live}
        old = {f: m.person_id for f, m in members.items() if not m.pinned}
    else:
        fixed = {f: m.person_id for f, m in members.items() if f in live}
        old = {}
    todo = live - set(fixed)
    nodes: dict[int, int] = {}  # face id -> node
    vecs: list[np.ndarray] = []
    a: list[int] = []
    b: list[int] = []
    dist: list[float] = []

    def node(face: int, vec: np.ndarray | None) -> int:
        if face not in nodes:
            nodes[face] = len(nodes)
            vecs.append(vec if vec is not None else np.zeros(0))
        elif vec is not None:  # first met as a neighbour, before its own batch
            vecs[nodes[face]] = vec
        return nodes[face]

    for ids, batch in _vectors(catalog, todo):
        for face, vec in zip(ids.tolist(), batch, strict=True):
            node(int(face), vec)
        for face, other, d in neighbour_links(index, ids, batch, policy.neighbours, policy.edge):
            if other not in live:  # the index may briefly hold a face just erased
                continue
            a.append(node(face, None))
            b.append(node(other, None))
            dist.append(d)
    seeds = [f for f in nodes if f in fixed]
    if seeds:
        stored = catalog.embeddings(seeds)
        for f in seeds:
            vecs[nodes[f]] = stored[f]
        by_person: dict[int, list[int]] = {}
        for f in seeds:
            by_person.setdefault(fixed[f], []).append(nodes[f])
        for group in by_person.values():  # a person's faces are one group
            for x, y in zip(group, group[1:], strict=False):
                a.append(x)
                b.append(y)
                dist.append(0.0)
    placements = _placements(
        _cluster(len(nodes), a, b, dist, vecs, policy, normalise), list(nodes), fixed, old
    )
    return Plan(tuple(placements), rebuild, len(todo), len(dist))


def _cluster(
    n: int,
    a: list[int],
    b: list[int],
    dist: list[float],
    vecs: list[np.ndarray],
    policy: ClusterPolicy,
    normalise: bool,
) -> list[list[int]]:
    if n == 0:
        return []
    graph = Graph(n, np.asarray(a), np.asarray(b), np.asarray(dist))
    matrix = np.stack([np.asarray(v, dtype=np.float64) for v in vecs])
    return groups_of(cluster(graph, matrix, policy.method, policy.gate, normalise=normalise))


def _placements(
    groups: list[list[int]],
    faces: list[int],
    fixed: Mapping[int, int],
    old: Mapping[int, int],
) -> list[Placement]:
    joined: dict[int, list[int]] = {}
    fresh: list[list[int]] = []
    for group in groups:
        members = [faces[i] for i in group]
        new = [f for f in members if f not in fixed]
        if not new:
            continue
        votes = Counter(fixed[f] for f in members if f in fixed)
        if votes:
            person = min(votes, key=lambda p: (-votes[p], p))
            joined.setdefault(person, []).extend(new)
        else:
            fresh.append(new)
    out = [Placement(p, tuple(sorted(fs))) for p, fs in sorted(joined.items())]
    # A rebuild hands an old person's id back to the new cluster overlapping it most, so
    # its label survives; an old person some user-placed face still holds keeps only those.
    reusable = set(old.values()) - set(fixed.values())
    overlaps = sorted(
        (
            (-n, min(group), person, i)
            for i, group in enumerate(fresh)
            for person, n in Counter(old[f] for f in group if f in old).items()
            if person in reusable
        )
    )
    given: dict[int, int] = {}
    for _, _, person, i in overlaps:
        if i not in given and person in reusable:
            given[i] = person
            reusable.discard(person)
    for i, group in enumerate(fresh):
        out.append(Placement(given.get(i), tuple(sorted(group))))
    return out
