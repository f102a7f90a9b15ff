"""The coarse quantizer of the IVF kind: which list each face goes to.

Up to ``FLAT_MAX_LISTS`` lists it is a flat index (every centroid compared, one BLAS call).
Past that, at 100M faces, the flat assignment dominates a build: 38 µs a face among 16384
centroids on 2 cores, 63 minutes per 100M. There the quantizer is itself an IVF over the
centroids ("nested"): ``nlist / 128`` groups, and a face is compared with the group centres
and the centroids of the ``ADD_PROBE`` nearest groups only: 7.6 µs, the same list as the
flat search for 93% of faces, and recall@10 unchanged on a 2M dlib-like gallery (0.965 /
0.986 at 512 / 1024 lists probed, both ways; ``benchmarks/coarse.py``). Searches pass
``quantizer_params`` that visit every group, so the lists a query probes are chosen exactly.

Centroids for the nested kind come from two-level k-means (k-means on the groups, then on
each group): 16384 lists in 6 s, where one flat k-means takes minutes.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from faceindex.index.base import Metric
from faceindex.index.faiss_flat import load_faiss

__all__ = [
    "FLAT_MAX_LISTS",
    "is_nested",
    "new_quantizer",
    "ready",
    "search_params",
    "train_nested",
]

log = logging.getLogger(__name__)
FLAT_MAX_LISTS = 8192
CENTROIDS_PER_GROUP = 128
ADD_PROBE = 8  # groups visited to place a face at add time
KMEANS_ITER = 20


def new_quantizer(dim: int, metric: Metric, nlist: int, *, nested: bool | None = None) -> Any:
    """Flat up to ``FLAT_MAX_LISTS`` lists, nested past it; ``nested`` forces either
    (``benchmarks/coarse.py`` compares both at the same ``nlist``)."""
    f = load_faiss()
    flat_cls = f.IndexFlatL2 if metric == "l2" else f.IndexFlatIP
    if not (nlist > FLAT_MAX_LISTS if nested is None else nested):
        return flat_cls(dim)
    groups = max(2, nlist // CENTROIDS_PER_GROUP)
    top = flat_cls(dim)
    metric_type = f.METRIC_L2 if metric == "l2" else f.METRIC_INNER_PRODUCT
    ivf = f.IndexIVFFlat(top, dim, groups, metric_type)
    ivf.own_fields = True
    top.this.disown()
    ivf.nprobe = ADD_PROBE
    ivf.cp.min_points_per_centroid = 1
    return ivf


def is_nested(quantizer: Any) -> bool:
    return "IVF" in type(load_faiss().downcast_index(quantizer)).__name__


def train_nested(index: Any, sample: np.ndarray) -> None:
    """Give ``index`` (an untrained IVF with a nested quantizer) its centroids by two-level
    k-means on ``sample``; ``index.train`` then trains only the codes."""
    f = load_faiss()
    nlist, dim = index.nlist, index.d
    quantizer = f.downcast_index(index.quantizer)
    groups = quantizer.nlist
    spherical = index.metric_type == f.METRIC_INNER_PRODUCT
    top = f.Kmeans(dim, groups, niter=KMEANS_ITER, seed=1234, spherical=spherical)
    top.train(sample)
    _, assign = top.index.search(sample, 1)
    assign = assign.ravel()
    sizes = np.bincount(assign, minlength=groups)
    # centroids per group in proportion to its share of the sample, at least 1, never more
    # than it has points, summing to nlist
    share = np.maximum(1, np.floor(sizes / sizes.sum() * nlist)).astype(np.int64)
    share = np.minimum(share, np.maximum(sizes, 1))
    for g in np.argsort(-sizes):
        if share.sum() >= nlist:
            break
        share[g] += min(nlist - share.sum(), sizes[g] - share[g])
    while share.sum() > nlist:
        share[np.argmax(share)] -= 1
    order = np.argsort(assign, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    parts = []
    for g in range(groups):
        points = sample[order[bounds[g] : bounds[g + 1]]]
        if share[g] == 0 or not len(points):
            continue
        if share[g] >= len(points):
            parts.append(points[: share[g]])
            continue
        km = f.Kmeans(dim, int(share[g]), niter=KMEANS_ITER, seed=1234 + g, spherical=spherical)
        km.cp.min_points_per_centroid = 1
        km.train(points)
        parts.append(km.centroids)
    centroids = np.ascontiguousarray(np.vstack(parts), dtype=np.float32)
    if len(centroids) < nlist:  # empty groups: fill from the sample so nlist stays exact
        extra = sample[np.random.default_rng(1234).choice(len(sample), nlist - len(centroids))]
        centroids = np.vstack([centroids, extra])
    log.info("two-level k-means: %d groups, %d centroids", groups, len(centroids))
    quantizer.train(centroids)
    quantizer.add(centroids)
    quantizer.make_direct_map()  # residuals need each centroid back by its list number


def ready(index: Any) -> None:
    """After a read: a nested quantizer must map list numbers back to centroids."""
    quantizer = load_faiss().downcast_index(index.quantizer)
    if is_nested(quantizer) and quantizer.direct_map.no():
        quantizer.make_direct_map()


def search_params(index: Any, nprobe: int) -> Any:
    """IVF search parameters: ``nprobe`` lists, chosen exactly also under a nested quantizer."""
    f = load_faiss()
    params = f.SearchParametersIVF(nprobe=nprobe)
    quantizer = f.downcast_index(index.quantizer)
    if is_nested(quantizer):
        inner = f.SearchParametersIVF(nprobe=quantizer.nlist)
        params.quantizer_params = inner
        params._inner = inner  # keep the Python object alive as long as params
    return params
