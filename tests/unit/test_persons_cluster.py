"""Persons clustering: the two graph clusterings (pure) and the placement of faces from the
vector index's neighbours (first build, incremental, rebuild) over a real SQLite catalog
and the in-memory index."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from faceindex.catalog.base import ImageOutcome, NewSource
from faceindex.catalog.sqlite import SqliteCatalog
from faceindex.index.memory import MemoryIndex
from faceindex.persons.base import ClusterPolicy, Placement
from faceindex.persons.build import plan, policy_for
from faceindex.persons.cluster import Graph, chinese_whispers, gated_components, groups_of
from faceindex.types import BBox, DetectedFace, FaceQuality
from faceindex.vision.calibration import default_calibration

pytestmark = pytest.mark.unit


def _chain(n: int, step: float) -> np.ndarray:
    """n points on a line, ``step`` apart (a chain of close pairs whose ends are far)."""
    out = np.zeros((n, 4))
    out[:, 0] = np.arange(n) * step
    return out


def _links(vecs: np.ndarray, edge: float) -> Graph:
    a, b, d = [], [], []
    for i in range(len(vecs)):
        for j in range(i + 1, len(vecs)):
            dist = float(np.linalg.norm(vecs[i] - vecs[j]))
            if dist <= edge:
                a.append(i)
                b.append(j)
                d.append(dist)
    return Graph(len(vecs), np.array(a), np.array(b), np.array(d))


def test_gated_components_stop_a_chain_single_linkage_would_follow() -> None:
    vecs = _chain(12, 0.3)  # neighbours 0.3 apart, ends 3.3 apart
    graph = _links(vecs, 0.35)
    loose = gated_components(graph, vecs, gate=100.0)  # no gate: single linkage
    assert len(set(loose.tolist())) == 1
    gated = gated_components(graph, vecs, gate=0.7)
    groups = groups_of(gated)
    assert len(groups) > 2
    for g in groups:  # every group is compact: its span is under twice the gate
        span = vecs[g, 0].max() - vecs[g, 0].min()
        assert span <= 1.4


def test_both_methods_find_two_separate_blobs() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.05, (8, 4))
    b = rng.normal(0, 0.05, (6, 4)) + np.array([2.0, 0, 0, 0])
    vecs = np.vstack([a, b])
    graph = _links(vecs, 0.5)
    truth = [list(range(8)), list(range(8, 14))]
    assert groups_of(chinese_whispers(graph)) == truth
    assert groups_of(gated_components(graph, vecs, gate=0.6)) == truth


def test_isolated_nodes_get_their_own_label() -> None:
    graph = Graph(3, np.array([], dtype=np.int64), np.array([]), np.array([]))
    assert groups_of(chinese_whispers(graph)) == [[0], [1], [2]]


def test_policy_distances_come_from_the_model_calibration() -> None:
    cal = default_calibration("dlib-resnet-v1+mirror@1")
    p = policy_for(cal, "components", 7, link_fmr=0.002, gate_fmr=0.01)
    assert p.edge == pytest.approx(cal.distance_for_fmr(0.002), abs=1e-4)
    assert p.gate == pytest.approx(cal.distance_for_fmr(0.01), abs=1e-4)
    assert cal.fmr_at(p.edge) == pytest.approx(0.002, rel=0.01) and p.neighbours == 7


# -- placement over a catalog and an index ---------------------------------------------------


def _face(vec: np.ndarray, left: int) -> DetectedFace:
    return DetectedFace(
        bbox=BBox(left, 0, left + 40, 40),
        landmarks=((0.0, 0.0),),
        detector="test",
        detector_score=1.0,
        quality=FaceQuality(size=40, sharpness=100.0, pose=0.0, score=0.9),
        embedding=vec.astype(np.float32),
        thumbnail=b"t",
    )


class Gallery:
    """Two people (A near the origin, B far away), faces recorded image by image."""

    def __init__(self, tmp: Path) -> None:
        self.cat = SqliteCatalog(tmp / "catalog.db")
        self.index = MemoryIndex(128)
        self.src = self.cat.add_source(NewSource("s", "folder", "/x", "o", "consent", 30))
        self.rng = np.random.default_rng(1)
        self.n = 0

    def add(self, person: str, count: int) -> list[int]:
        centre = np.zeros(128)
        centre[0 if person == "A" else 1] = 3.0
        ids = []
        for _ in range(count):
            self.n += 1
            vec = centre + self.rng.normal(0, 0.02, 128)
            sha = hashlib.sha256(f"{self.n}".encode()).hexdigest()
            out = ImageOutcome(self.src.id, f"{self.n}.jpg", 1, 1.0, sha, 100, 100,
                               (_face(vec, 0),))  # fmt: skip
            for fid, v in self.cat.record([out], "m"):
                self.index.add(np.array([fid]), v[None, :])
                ids.append(fid)
        return ids


def _groups(g: Gallery) -> set[frozenset[int]]:
    return {frozenset(p.face_ids) for p in g.cat.persons()}


@pytest.mark.parametrize("method", ["chinese-whispers", "components"])
def test_first_build_then_new_faces_join_or_form_persons(tmp_path: Path, method: str) -> None:
    g = Gallery(tmp_path)
    a = g.add("A", 4)
    policy = ClusterPolicy(method, edge=0.5, gate=0.6, neighbours=5)  # type: ignore[arg-type]
    first = plan(g.cat, g.index, policy)
    g.cat.assign_persons(first.placements)
    assert _groups(g) == {frozenset(a)}
    (person_a,) = [p.id for p in g.cat.persons()]
    more_a, b = g.add("A", 2), g.add("B", 3)
    again = plan(g.cat, g.index, policy)
    assert again.faces_considered == 5  # only the faces in no person
    g.cat.assign_persons(again.placements)
    assert _groups(g) == {frozenset(a + more_a), frozenset(b)}
    assert person_a in {p.id for p in g.cat.persons() if set(more_a) <= set(p.face_ids)}
    assert plan(g.cat, g.index, policy).placements == ()  # nothing left to place


def test_rebuild_keeps_ids_labels_and_user_decisions(tmp_path: Path) -> None:
    g = Gallery(tmp_path)
    a, b = g.add("A", 4), g.add("B", 3)
    policy = ClusterPolicy("chinese-whispers", edge=0.5, gate=0.6, neighbours=10)
    g.cat.assign_persons(plan(g.cat, g.index, policy).placements)
    by_face = {f: p.id for p in g.cat.persons() for f in p.face_ids}
    g.cat.label_person(by_face[b[0]], "B", "ines")
    # A user says a[0] is someone else: both sides pinned, as `persons remove-face` does.
    g.cat.assign_persons(
        [Placement(by_face[a[1]], tuple(a[1:])), Placement(None, (a[0],))], pinned=True
    )
    new_a = g.add("A", 1)
    rebuilt = plan(g.cat, g.index, policy, rebuild=True)
    assert rebuilt.drop_unpinned and rebuilt.faces_considered == len(b) + 1
    g.cat.assign_persons(rebuilt.placements, drop_unpinned=True)
    people = {frozenset(p.face_ids): p for p in g.cat.persons()}
    assert frozenset(b) in people and frozenset([a[0]]) in people
    assert len(people) == 3  # the new face of A joined one of A's two pinned persons
    assert people[frozenset(b)].id == by_face[b[0]] and people[frozenset(b)].label == "B"
    assert any(set(new_a) < set(k) for k in people)
