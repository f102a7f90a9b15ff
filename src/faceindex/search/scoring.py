"""Turning an L2 distance into what a person reads: a similarity and a decision band.

dlib's descriptors were trained so that the same person lies within 0.6 (L2) and different
people beyond it. ``similarity`` is a logistic of the distance centred on the match
threshold: 50 at the threshold, ~88 at 0.5, ~98 at 0.4, ~12 at 0.7. It is a reading aid,
not a calibrated probability.
"""

from __future__ import annotations

import math

__all__ = ["DECISIONS", "decide", "similarity"]

DECISIONS = ("match", "possible", "no-match")
_SCALE = 0.05


def similarity(distance: float, threshold: float) -> float:
    if not math.isfinite(distance):
        return 0.0
    z = (distance - threshold) / _SCALE
    if z > 60:
        return 0.0
    return round(100.0 / (1.0 + math.exp(z)), 1)


def decide(distance: float, threshold: float, possible: float) -> str:
    if distance <= threshold:
        return "match"
    if distance <= possible:
        return "possible"
    return "no-match"
