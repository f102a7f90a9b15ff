"""The ingest screens: is a face one of the suppressed people (opt-out), are an image's
bytes those of an erased image (tombstone)?

Distances are Euclidean between stored embeddings, the index's own measure: for an ``l2``
pack its metric, for a ``cosine`` pack (unit vectors) a monotone function of it, so the
pack's thresholds apply unchanged (see ``vision/pack.py``).

The templates come from :class:`~faceindex.governance.store.GovernanceStore` and never leave
this module's callers; only booleans and ids come out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceindex.catalog.base import Catalog, ImageOutcome
from faceindex.governance.near_copies import near_refusals
from faceindex.governance.store import GovernanceStore
from faceindex.pipeline.runner import FaceScreen, ImageScreen
from faceindex.types import DetectedFace

__all__ = ["min_distances", "screen_for", "tombstone_screen", "within"]


def min_distances(vectors: np.ndarray, templates: np.ndarray) -> np.ndarray:
    """For each vector, the distance to its nearest template (inf with no templates)."""
    vecs = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    if not len(templates) or not len(vecs):
        return np.full(len(vecs), np.inf, dtype=np.float32)
    tmpl = np.asarray(templates, dtype=np.float32)
    # |a-b|^2 = |a|^2 + |b|^2 - 2ab, in blocks so a large gallery sweep stays small in memory.
    out = np.empty(len(vecs), dtype=np.float32)
    t2 = (tmpl * tmpl).sum(1)
    for start in range(0, len(vecs), 4096):
        block = vecs[start : start + 4096]
        d2 = (block * block).sum(1)[:, None] + t2[None, :] - 2.0 * block @ tmpl.T
        out[start : start + 4096] = np.sqrt(np.maximum(d2, 0.0)).min(1)
    return out


def within(vectors: np.ndarray, templates: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean mask: which vectors lie within ``threshold`` of any template."""
    return min_distances(vectors, templates) < threshold


def screen_for(templates: np.ndarray, threshold: float) -> FaceScreen | None:
    """The ingest runner's screen: keep a face unless it matches a suppression."""
    if not len(templates):
        return None
    frozen = np.array(templates, dtype=np.float32, copy=True)

    def screen(faces: Sequence[DetectedFace]) -> list[bool]:
        vecs = np.stack([np.asarray(f.embedding, dtype=np.float32) for f in faces])
        return [not bool(x) for x in within(vecs, frozen, threshold)]

    return screen


def tombstone_screen(store: GovernanceStore, catalog: Catalog | None = None) -> ImageScreen:
    """The runner's image screen: refuse bytes an erasure removed, until the tombstone is
    lifted. Asked once per batch, so an erasure made during a long ingest holds too.
    Near-duplicates of erased images (perceptual hash, ``near_copies.py``) are refused as
    well; with ``catalog``, bytes it already holds only gain a location."""

    def screen(outcomes: Sequence[ImageOutcome]) -> dict[str, str]:
        by_sha: dict[str, list[str]] = {}
        for o in outcomes:
            if o.sha256:
                by_sha.setdefault(o.sha256, []).append(o.locator)
        refused: dict[str, str] = {}
        for sha, (rid, state) in store.tombstoned(list(by_sha)).items():
            why = f"erased (receipt {rid})" if state == "held" else f"being erased ({rid})"
            refused.update(dict.fromkeys(by_sha[sha], why))
        rest = [o for o in outcomes if o.locator not in refused]
        refused.update(near_refusals(store, rest, catalog))
        return refused

    return screen
