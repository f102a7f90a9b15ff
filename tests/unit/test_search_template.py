"""Template search (search/template.py) over a real SQLite catalog and the in-memory index:
the bands count m x N comparisons on the closest single distance, mean and best-of rank,
a template's own faces are left out, and a restricted search counts only its sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceindex.errors import InputError
from faceindex.search.scoring import Decider
from faceindex.search.template import fuse_mean, match_template
from faceindex.vision.calibration import default_calibration
from tests.unit.test_persons_cluster import Gallery

pytestmark = pytest.mark.unit

DECIDER = Decider(default_calibration("dlib-resnet-v1+mirror@1"))


def test_bands_count_every_template_face_and_use_the_closest_distance(tmp_path: Path) -> None:
    g = Gallery(tmp_path)
    a, b = g.add("A", 3), g.add("B", 4)
    template = np.stack([g.cat.embeddings([f])[f] for f in a[:2]])
    r = match_template(
        g.cat, g.index, template, qualities=[0.9, 0.9], top_k=3, decider=DECIDER,
        fusion="best-of", exclude=a[:2],
    )  # fmt: skip
    n = len(a) + len(b) - 2
    assert r.gallery_size == 2 * n and "2 x 5 comparisons" in r.probe.warnings[0]
    top = r.matches[0]
    assert top.face_id == a[2] and not {m.face_id for m in r.matches} & set(a[:2])
    vec = g.cat.embeddings([a[2]])[a[2]]
    closest = float(np.linalg.norm(template - vec, axis=1).min())
    assert top.distance == pytest.approx(closest, abs=1e-4)
    single = DECIDER.assess(closest, n)
    fused = DECIDER.assess(closest, 2 * n)
    assert top.stranger_chance == pytest.approx(fused.stranger_chance, rel=1e-3)
    assert fused.stranger_chance > single.stranger_chance  # m chances, not one


def test_mean_ranks_by_the_mean_but_decides_on_the_closest(tmp_path: Path) -> None:
    g = Gallery(tmp_path)
    a = g.add("A", 4)
    template = np.stack([g.cat.embeddings([f])[f] for f in a[:3]])
    r = match_template(
        g.cat, g.index, template, qualities=[0.9] * 3, top_k=1, decider=DECIDER,
        fusion="mean", exclude=a[:3],
    )  # fmt: skip
    vec = g.cat.embeddings([a[3]])[a[3]]
    assert r.matches[0].distance == pytest.approx(
        float(np.linalg.norm(template - vec, axis=1).min()), abs=1e-4
    )
    unit = fuse_mean(np.array([[3.0, 4.0], [3.0, 4.0]]), normalise=True)
    assert np.allclose(unit, [0.6, 0.8])
    with pytest.raises(InputError):
        match_template(g.cat, g.index, template, qualities=[], top_k=1, decider=DECIDER,
                       fusion="median")  # type: ignore[arg-type]  # fmt: skip


def test_a_restricted_search_counts_only_the_template_faces_it_searches(tmp_path: Path) -> None:
    g = Gallery(tmp_path)
    a = g.add("A", 3)
    template = np.stack([g.cat.embeddings([f])[f] for f in a[:1]])
    r = match_template(
        g.cat, g.index, template, qualities=[0.9], top_k=2, decider=DECIDER,
        sources=["s"], exclude=[a[0], 10**6],
    )  # fmt: skip
    assert r.gallery_size == 2  # three faces in 's', one of them the template's


def test_a_large_persons_template_is_its_best_faces() -> None:
    from faceindex.search.template import TEMPLATE_MAX, pick_template

    qualities = {i: (i % 7) / 7 for i in range(1, 101)}
    chosen = pick_template(qualities)
    assert len(chosen) == TEMPLATE_MAX and chosen == sorted(chosen)
    assert min(qualities[i] for i in chosen) >= max(
        qualities[i] for i in qualities if i not in chosen
    )
    assert pick_template({3: 0.5, 1: 0.5}) == [1, 3]
