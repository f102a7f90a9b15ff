"""Open-set identification measures on hand-placed descriptors."""

from __future__ import annotations

import numpy as np
import pytest

from faceindex.evaluation.openset import (
    Probe,
    build_open_set,
    evaluate_open_set,
    fnir_at_fpir,
    scale_up,
)
from faceindex.search.scoring import Decider
from faceindex.vision.calibration import fit_calibration

pytestmark = pytest.mark.unit


class Fixed:
    def decide(self, distance: float, gallery_size: int, quality: float = 1.0) -> str:
        return "match" if distance <= 0.6 else "no-match"


def vec(*xs: float) -> np.ndarray:
    v = np.zeros(4)
    v[: len(xs)] = xs
    return v


def test_fnir_at_fpir_picks_the_threshold_from_the_strangers() -> None:
    mated = np.array([0.1, 0.2, 0.5, 0.9])
    hit = np.array([True, True, True, False])
    strangers = np.linspace(0.3, 1.2, 10)  # 0.3, 0.4, ...
    assert fnir_at_fpir(mated, hit, strangers, 0.1) == pytest.approx(0.5)  # t < 0.4: 0.1 0.2
    assert fnir_at_fpir(mated, hit, strangers, 0.01) is None  # 10 strangers cannot tell 1%


def test_open_set_counts_wrong_person_matches_and_stranger_matches() -> None:
    people = {
        "ann": [Probe("ann", 0.9, vec(0)), Probe("ann", 0.9, vec(0.1))],
        "bob": [Probe("bob", 0.9, vec(5)), Probe("bob", 0.9, vec(5.5))],  # 0.5 from his own
        "cat": [Probe("cat", 0.9, vec(0.3))],  # held out: 0.3 from ann
    }
    distractors = [Probe("", 0.9, vec(5.5, 0.3))]  # 0.3 from bob's probe, nearer than his own
    gallery, mated, nonmated = build_open_set(people, distractors, {"cat"})
    assert gallery.enrolled == ("ann", "bob") and len(mated) == 2 and len(nonmated) == 1
    reports = evaluate_open_set(gallery, mated, nonmated, Fixed(), sizes=[0, 1])
    none, one = reports
    assert (none.gallery, one.gallery) == (2, 3)
    assert none.rank1 == 1.0 and none.match_fpir == 1.0  # cat is 0.3 from ann: "match"
    assert one.rank1 == pytest.approx(0.5)  # the distractor beats bob's own face
    assert one.wrong_person_matches == pytest.approx(0.5)
    assert one.rank10 == 1.0


def test_scale_up_loses_matches_as_the_gallery_grows() -> None:
    rng = np.random.default_rng(1)
    cal = fit_calibration(
        rng.normal(0.85, 0.08, 100_000),
        rng.normal(0.38, 0.07, 2_000),
        model="m@1",
        measured_on="synthetic",
        identities=50,
    )
    genuine = rng.normal(0.38, 0.07, 500)
    small, big = scale_up(Decider(cal), genuine, [1_000, 100_000_000])
    assert small["match_fnir"] < big["match_fnir"]
    assert small["rank10"] >= big["rank10"] and 0 <= big["rank1"] <= big["rank10"] <= 1
