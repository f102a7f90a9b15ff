"""Pure verification and identification metrics over L2 distances (smaller = same person)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Verification", "best_threshold", "kfold_accuracy", "rank1", "roc_points", "verify"]


@dataclass(frozen=True)
class Verification:
    pairs: int
    genuine: int
    impostor: int
    threshold: float
    accuracy: float  # over all pairs
    balanced_accuracy: float  # mean of TAR and TRR: fair when impostors dominate
    tar: float  # genuine pairs accepted
    far: float  # impostor pairs accepted


def verify(distances: np.ndarray, same: np.ndarray, threshold: float) -> Verification:
    d = np.asarray(distances, dtype=np.float64)
    s = np.asarray(same, dtype=bool)
    accept = d <= threshold
    genuine, impostor = int(s.sum()), int((~s).sum())
    tar = float((accept & s).sum() / genuine) if genuine else float("nan")
    far = float((accept & ~s).sum() / impostor) if impostor else float("nan")
    acc = float((accept == s).mean()) if len(s) else float("nan")
    balanced = float(np.nanmean([tar, 1 - far]))
    return Verification(len(s), genuine, impostor, threshold, acc, balanced, tar, far)


def best_threshold(distances: np.ndarray, same: np.ndarray, *, balanced: bool = False) -> float:
    """The threshold with the highest (balanced) accuracy; midpoints between sorted scores."""
    d = np.sort(np.unique(np.asarray(distances, dtype=np.float64)))
    if len(d) == 0:
        return float("nan")  # no scores, no threshold
    candidates = np.concatenate([[d[0] - 1e-6], (d[:-1] + d[1:]) / 2, [d[-1] + 1e-6]])
    key = "balanced_accuracy" if balanced else "accuracy"
    scores = [getattr(verify(distances, same, t), key) for t in candidates]
    return float(candidates[int(np.argmax(scores))])


def kfold_accuracy(
    distances: np.ndarray, same: np.ndarray, folds: np.ndarray
) -> tuple[float, float, list[float]]:
    """LFW protocol: for each fold, pick the threshold on the others and score this fold.

    Returns (mean accuracy, standard deviation, per-fold thresholds)."""
    d, s, f = np.asarray(distances), np.asarray(same, dtype=bool), np.asarray(folds)
    accs, thresholds = [], []
    for fold in np.unique(f):
        train, test = f != fold, f == fold
        t = best_threshold(d[train], s[train])
        thresholds.append(t)
        accs.append(verify(d[test], s[test], t).accuracy)
    return float(np.mean(accs)), float(np.std(accs)), thresholds


def roc_points(
    distances: np.ndarray, same: np.ndarray, fars: Sequence[float] = (0.001, 0.01, 0.1)
) -> list[tuple[float, float, float]]:
    """(target FAR, threshold, TAR at that threshold) for each target false accept rate."""
    d, s = np.asarray(distances, dtype=np.float64), np.asarray(same, dtype=bool)
    impostor = np.sort(d[~s])
    out = []
    for far in fars:
        if len(impostor) == 0:
            break
        k = int(np.floor(far * len(impostor)))  # impostors we may accept
        t = float(impostor[k] - 1e-9) if k < len(impostor) else float(impostor[-1])
        out.append((far, t, verify(d, s, t).tar))
    return out


def rank1(
    gallery: np.ndarray,
    gallery_labels: Sequence[str],
    probes: np.ndarray,
    probe_labels: Sequence[str],
) -> float:
    """Fraction of probes whose nearest gallery vector carries the same label."""
    if len(probes) == 0:
        return float("nan")
    g = np.asarray(gallery, dtype=np.float64)
    p = np.asarray(probes, dtype=np.float64)
    d2 = (p * p).sum(1)[:, None] - 2 * p @ g.T + (g * g).sum(1)[None]
    nearest = np.argmin(d2, axis=1)
    hits = [gallery_labels[j] == probe_labels[i] for i, j in enumerate(nearest)]
    return float(np.mean(hits))
