"""Evaluation metrics and pairs-file parsing on hand-made numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceindex.evaluation.datasets import folder_pairs, load_pairs
from faceindex.evaluation.metrics import best_threshold, kfold_accuracy, rank1, roc_points, verify

pytestmark = pytest.mark.unit

D = np.array([0.30, 0.45, 0.55, 0.62, 0.70, 0.80])
SAME = np.array([True, True, True, False, False, False])


def test_verify_counts() -> None:
    v = verify(D, SAME, 0.5)
    assert (v.genuine, v.impostor) == (3, 3)
    assert v.tar == pytest.approx(2 / 3) and v.far == 0.0
    assert v.accuracy == pytest.approx(5 / 6)
    assert v.balanced_accuracy == pytest.approx((2 / 3 + 1) / 2)


def test_best_threshold_separates() -> None:
    t = best_threshold(D, SAME)
    assert 0.55 < t < 0.62
    assert verify(D, SAME, t).accuracy == 1.0


def test_kfold_picks_threshold_on_other_folds() -> None:
    d = np.concatenate([D, D + 0.01])
    s = np.concatenate([SAME, SAME])
    mean, std, ts = kfold_accuracy(d, s, np.array([0] * 6 + [1] * 6))
    assert mean == 1.0 and std == 0.0 and len(ts) == 2


def test_roc_points_respect_far() -> None:
    rng = np.random.default_rng(0)
    d = np.concatenate([rng.normal(0.4, 0.05, 500), rng.normal(0.75, 0.05, 1000)])
    s = np.array([True] * 500 + [False] * 1000)
    for far, t, tar in roc_points(d, s, (0.01, 0.1)):
        assert verify(d, s, t).far <= far
        assert tar > 0.9


def test_rank1() -> None:
    g = np.array([[0.0, 0.0], [1.0, 1.0]])
    p = np.array([[0.1, 0.0], [0.9, 1.0], [0.2, 0.1]])
    assert rank1(g, ["a", "b"], p, ["a", "b", "b"]) == pytest.approx(2 / 3)


def test_folder_pairs_counts() -> None:
    groups = {"a": [Path("a1"), Path("a2")], "b": [Path("b1"), Path("b2"), Path("b3")]}
    pairs = folder_pairs(groups)
    assert sum(pairs.same) == 1 + 3 and len(pairs.same) == 10


def test_lfw_pairs_file(tmp_path: Path) -> None:
    f = tmp_path / "pairs.txt"
    f.write_text("2 1\nAnn 1 2\nAnn 1 Bob 3\nCid 2 4\nCid 1 Dee 1\n")
    pairs = load_pairs(f, tmp_path)
    assert pairs.same == [True, False, True, False]
    assert pairs.folds == [0, 0, 1, 1]
    assert pairs.left[0] == tmp_path / "Ann" / "Ann_0001.jpg"
    assert pairs.right[1] == tmp_path / "Bob" / "Bob_0003.jpg"


def test_csv_pairs_file(tmp_path: Path) -> None:
    f = tmp_path / "master.csv"
    f.write_text("file_x,file_y,Decision\nimg1.jpg,img2.jpg,Yes\nimg1.jpg,img3.jpg,No\n")
    pairs = load_pairs(f, tmp_path / "images")
    assert pairs.same == [True, False]
    assert pairs.right[1] == tmp_path / "images" / "img3.jpg"
