"""A search restricted to a few sources finds their faces even where the rest of a large
gallery crowds them out of the index's nearest candidates."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from faceindex.catalog.sqlite import SqliteCatalog
from faceindex.index.faiss_index import FaissIndex
from faceindex.index.faiss_options import FaissOptions
from faceindex.search import searcher
from faceindex.types import DetectedFace
from tests.contract.builders import face, new_source, outcome

DIM = 128
Gallery = tuple[SqliteCatalog, FaissIndex, np.ndarray, dict[int, np.ndarray]]
CROWD = 5000  # more than the 4096 candidates an IVF search returns at most


def _record(cat: SqliteCatalog, source: str, vecs: np.ndarray) -> list[tuple[int, np.ndarray]]:
    src = cat.add_source(new_source(source))
    outcomes = [
        outcome(src.id, f"{source}-{n}.jpg", f"{source}-{n}", (_face(n, v),))
        for n, v in enumerate(vecs)
    ]
    return cat.record(outcomes, model="m")


def _face(seed: int, vec: np.ndarray) -> DetectedFace:
    return dataclasses.replace(face(seed), embedding=vec.astype(np.float32))


@pytest.fixture
def gallery(tmp_path: Path) -> Gallery:
    rng = np.random.default_rng(4)
    probe = rng.normal(0, 0.05, DIM).astype(np.float32)
    crowd = probe + rng.normal(0, 0.01, (CROWD, DIM))  # all of them nearer than the few
    few = probe + rng.normal(0, 0.05, (3, DIM))
    cat = SqliteCatalog(tmp_path / "catalog.db")
    index = FaissIndex(
        tmp_path / "idx",
        DIM,
        options=FaissOptions(kind="ivf", train_min=500, nlist=16, nprobe=16, rerank=200),
    )
    added = _record(cat, "crowd", crowd) + _record(cat, "few", few)
    index.add(np.array([i for i, _ in added]), np.stack([v for _, v in added]))
    index.save()
    assert index.kind == "ivf-pq"
    return cat, index, probe, dict(added[-3:])


def test_restricted_search_reaches_sources_the_crowd_hides(gallery: Gallery) -> None:
    cat, index, probe, few = gallery
    [hits] = searcher.knn(cat, index, probe[None, :], 10, sources=["few"])
    want = sorted((float(np.linalg.norm(v - probe)), i) for i, v in few.items())
    assert [row.id for _, row in hits] == [i for _, i in want]  # exact order and distances
    np.testing.assert_allclose([d for d, _ in hits], [d for d, _ in want], atol=1e-4)
    assert all(any(p.source == "few" for p in row.locations) for _, row in hits)
    [crowd] = searcher.knn(cat, index, probe[None, :], 5, sources=["crowd"])
    assert len(crowd) == 5 and not {row.id for _, row in crowd} & set(few)


def test_filtering_the_nearest_alone_would_miss_them(
    gallery: Gallery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the catalog is asked: without it the same search comes back empty."""
    cat, index, probe, _ = gallery
    monkeypatch.setattr(searcher, "PUSHDOWN_AFTER", 10**9)
    assert searcher.knn(cat, index, probe[None, :], 10, sources=["few"]) == [[]]


def test_several_probe_faces_share_one_index_call(
    gallery: Gallery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crowd photo's faces go to the index together (one call, not one per face) and each
    gets the same answer it would alone, the widened restricted ones included."""
    cat, index, probe, _ = gallery
    rng = np.random.default_rng(7)
    probes = np.vstack([probe, probe + rng.normal(0, 0.02, (4, DIM))]).astype(np.float32)
    alone = [searcher.knn(cat, index, q[None, :], 10, sources=["few"])[0] for q in probes]
    plain = [searcher.knn(cat, index, q[None, :], 10)[0] for q in probes]
    calls: list[int] = []
    search = index.search

    def counted(q: np.ndarray, k: int, *, within: np.ndarray | None = None) -> object:
        calls.append(len(q))
        return search(q, k, within=within)

    monkeypatch.setattr(index, "search", counted)
    together = searcher.knn(cat, index, probes, 10)
    assert calls == [len(probes)]  # nothing needed widening: one call for all five
    assert [[r.id for _, r in h] for h in together] == [[r.id for _, r in h] for h in plain]
    restricted = searcher.knn(cat, index, probes, 10, sources=["few"])
    assert [[r.id for _, r in h] for h in restricted] == [[r.id for _, r in h] for h in alone]
