"""Graph clustering of faces (pure: arrays in, labels out; no catalog, no index).

A graph has ``n`` nodes (faces) and links ``(a, b, distance)`` between faces at most the
policy's ``edge`` apart (``build.py`` takes them from the vector index's nearest neighbours,
so the graph costs k links per face, never all pairs). Two clusterings:

- :func:`chinese_whispers`: dlib's Chinese whispers (label propagation; each node takes the
  label most of its neighbours hold). Unweighted links with a self-loop per node, as dlib's
  own face clustering builds them; deterministic (dlib seeds its generator).
- :func:`gated_components`: connected components at a strict distance with a rule against
  chaining: links are taken shortest first, and two groups join only if their mean
  descriptors are at most ``gate`` apart. A chain A-B-C of close pairs whose ends are far
  apart drifts the means apart, so it stops where single linkage would run on.
"""

from __future__ import annotations

import numpy as np

from faceindex.errors import InputError

__all__ = ["Graph", "chinese_whispers", "cluster", "gated_components", "groups_of"]


class Graph:
    """Nodes 0..n-1 and undirected links with their distances (duplicates allowed)."""

    def __init__(self, n: int, a: np.ndarray, b: np.ndarray, distance: np.ndarray) -> None:
        self.n = int(n)
        self.a = np.asarray(a, dtype=np.int64)
        self.b = np.asarray(b, dtype=np.int64)
        self.distance = np.asarray(distance, dtype=np.float64)

    def links(self) -> list[tuple[int, int]]:
        """Each undirected link once, no self-loops, smallest node first."""
        ends = zip(self.a.tolist(), self.b.tolist(), strict=True)
        return sorted({(min(x, y), max(x, y)) for x, y in ends if x != y})


def chinese_whispers(graph: Graph) -> np.ndarray:
    """dlib's Chinese whispers; one label per node (0..clusters-1)."""
    import dlib

    if graph.n == 0:
        return np.zeros(0, dtype=np.int64)
    edges = [(i, i) for i in range(graph.n)] + graph.links()
    labels = np.asarray(dlib.chinese_whispers(edges), dtype=np.int64)
    return _dense(labels)


def gated_components(
    graph: Graph, vectors: np.ndarray, gate: float, *, normalise: bool = False
) -> np.ndarray:
    """Components over the links, shortest first, joining two groups only while their mean
    descriptors (unit-normalised first where the model's are) stay within ``gate``."""
    n = graph.n
    parent = np.arange(n)
    sums = np.asarray(vectors, dtype=np.float64).copy()
    counts = np.ones(n)

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    def mean(r: int) -> np.ndarray:
        m = sums[r] / counts[r]
        if normalise:
            m = m / max(float(np.linalg.norm(m)), 1e-12)
        return m

    for i in np.argsort(graph.distance, kind="stable"):
        x, y = root(int(graph.a[i])), root(int(graph.b[i]))
        if x == y:
            continue
        if float(np.linalg.norm(mean(x) - mean(y))) > gate:
            continue
        if counts[x] < counts[y]:
            x, y = y, x
        parent[y] = x
        sums[x] += sums[y]
        counts[x] += counts[y]
    return _dense(np.array([root(i) for i in range(n)], dtype=np.int64))


def cluster(
    graph: Graph, vectors: np.ndarray, method: str, gate: float, *, normalise: bool = False
) -> np.ndarray:
    if method == "chinese-whispers":
        return chinese_whispers(graph)
    if method == "components":
        return gated_components(graph, vectors, gate, normalise=normalise)
    raise InputError(f"unknown clustering method {method!r}")


def groups_of(labels: np.ndarray) -> list[list[int]]:
    """Node indexes grouped by label, each group ascending, groups by their first node."""
    out: dict[int, list[int]] = {}
    for node, label in enumerate(labels.tolist()):
        out.setdefault(int(label), []).append(node)
    return sorted(out.values(), key=lambda g: g[0])


def _dense(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0.. in order of first appearance."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse].astype(np.int64)
