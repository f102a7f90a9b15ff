"""Evaluate a labeled collection: verification (fixed, best, k-fold thresholds), ROC points,
and rank-1 identification with one image per person enrolled."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from faceindex.evaluation.datasets import PairSet, folder_pairs, load_pairs, people
from faceindex.evaluation.metrics import (
    best_threshold,
    kfold_accuracy,
    rank1,
    roc_points,
    verify,
)

__all__ = ["Report", "evaluate_folder", "evaluate_pairs"]

Vectors = dict[Path, "np.ndarray | None"]


@dataclass
class Report:
    name: str
    images: int
    no_face: int
    verification: dict[str, object] = field(default_factory=dict)
    best: dict[str, object] = field(default_factory=dict)
    kfold: dict[str, object] | None = None
    roc: list[dict[str, float]] = field(default_factory=list)
    rank1: float | None = None
    rank1_probes: int = 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def pair_distances(pairs: PairSet, vectors: Vectors) -> tuple[np.ndarray, np.ndarray]:
    """(distance, same person) of every pair (inf where a face was not found)."""
    d, s, _ = _score_pairs(pairs, vectors)
    return d, s


def _score_pairs(pairs: PairSet, vectors: Vectors) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d, s, f = [], [], []
    for a, b, same, fold in zip(pairs.left, pairs.right, pairs.same, pairs.folds, strict=True):
        va, vb = vectors.get(a), vectors.get(b)
        # A pair with an undetected face counts as rejected: the system could not match it.
        d.append(float(np.linalg.norm(va - vb)) if va is not None and vb is not None else np.inf)
        s.append(same)
        f.append(fold)
    return np.array(d), np.array(s, dtype=bool), np.array(f)


def _fill(report: Report, pairs: PairSet, vectors: Vectors, threshold: float) -> None:
    d, s, f = _score_pairs(pairs, vectors)
    report.verification = asdict(verify(d, s, threshold))
    finite = np.isfinite(d)
    best = best_threshold(d[finite], s[finite], balanced=True) if finite.any() else threshold
    report.best = asdict(verify(d, s, best))
    if len(np.unique(f)) > 1:
        mean, std, ts = kfold_accuracy(np.where(finite, d, 99.0), s, f)
        report.kfold = {
            "folds": len(ts),
            "accuracy": mean,
            "std": std,
            "thresholds": [round(t, 4) for t in ts],
        }
    report.roc = [
        {"far": a, "threshold": round(t, 4), "tar": round(tar, 4)} for a, t, tar in roc_points(d, s)
    ]


def evaluate_folder(root: Path, vectors: Vectors, threshold: float) -> Report:
    groups = people(root)
    paths = [p for ps in groups.values() for p in ps]
    report = Report(root.name, len(paths), sum(vectors.get(p) is None for p in paths))
    _fill(report, folder_pairs(groups), vectors, threshold)
    gallery: list[np.ndarray] = []
    probes: list[np.ndarray] = []
    g_labels: list[str] = []
    p_labels: list[str] = []
    for name, ps in groups.items():
        found = [(p, v) for p in ps if (v := vectors.get(p)) is not None]
        if len(ps) < 2 or not found:
            continue
        enrolled_path, enrolled = found[0]  # the first photo with a face is enrolled
        gallery.append(enrolled)
        g_labels.append(name)
        for p in ps:
            if p == enrolled_path:
                continue
            vec = vectors.get(p)
            # An undetected probe is a miss: a far-away point never sits nearest to a real face.
            probes.append(np.full(len(enrolled), 1e3, dtype=np.float32) if vec is None else vec)
            p_labels.append(name)
    if gallery and probes:
        report.rank1 = rank1(np.stack(gallery), g_labels, np.stack(probes), p_labels)
        report.rank1_probes = len(probes)
    return report


def evaluate_pairs(pairs_file: Path, root: Path, vectors: Vectors, threshold: float) -> Report:
    pairs = load_pairs(pairs_file, root)
    paths = set(pairs.left) | set(pairs.right)
    report = Report(pairs_file.name, len(paths), sum(vectors.get(p) is None for p in paths))
    _fill(report, pairs, vectors, threshold)
    return report


def files_of(root: Path) -> list[Path]:
    return [p for ps in people(root).values() for p in ps]


def pair_files(pairs_file: Path, root: Path) -> list[Path]:
    pairs = load_pairs(pairs_file, root)
    return sorted(set(pairs.left) | set(pairs.right))
