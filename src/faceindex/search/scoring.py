"""From a distance to what a person may read: how often a stranger comes this close, and a band.

A probe is compared with every face of the gallery searched, so whether a distance means
"the same person" depends on how many faces were searched. With the model's calibration
(``vision/calibration.py``: the per-comparison false-match rate ``fmr(d)``) and the number of
faces searched ``N``:

- ``expected_strangers = fmr(d) * N``: different people at least this close, on average;
- ``stranger_chance = 1 - (1 - fmr(d))^N``: the probability that the gallery holds any.

Bands:

- ``match``: ``stranger_chance < match_bound`` (default 0.01: fewer than 1 search in 100 of
  a gallery this size would show a stranger this close);
- ``possible``: the investigative candidate list: at most ``possible_strangers`` strangers
  expected this close (so a true mate at this distance still sits near the top of the list),
  and a per-comparison rate of at most ``possible_fmr`` (beyond it same-person pairs are rare
  and the list would be padded with anyone in a small gallery);
- else ``no-match``.

A match also needs both faces, probe and gallery, at or above ``match_quality``: below it
(tiny, blurred or turned faces) strangers come close several times more often than the
calibration, measured mostly on good faces, says (docs/BENCHMARKS.md), so such a result is
listed as ``possible`` at best.
"""

from __future__ import annotations

from dataclasses import dataclass

from faceindex.errors import InputError
from faceindex.vision.calibration import Calibration

__all__ = ["DECISIONS", "Assessment", "Decider", "in_words", "one_in", "pair_words"]

DECISIONS = ("match", "possible", "no-match")


@dataclass(frozen=True)
class Assessment:
    fmr: float
    expected_strangers: float
    stranger_chance: float
    decision: str


@dataclass(frozen=True)
class Decider:
    calibration: Calibration
    match_bound: float = 0.01
    possible_strangers: float = 10.0
    possible_fmr: float = 0.05
    match_quality: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.match_bound < 1:
            raise InputError(f"match bound must lie in (0, 1), got {self.match_bound}")
        if self.possible_strangers < 0 or not 0 < self.possible_fmr <= 1:
            raise InputError("possible_strangers must be >= 0 and possible_fmr in (0, 1]")

    def assess(self, distance: float, gallery_size: int, quality: float = 1.0) -> Assessment:
        """``quality``: the lower of the probe face's and the gallery face's."""
        cal = self.calibration
        fmr = cal.fmr_at(distance)
        expected = fmr * max(0, gallery_size)
        chance = cal.stranger_chance(distance, gallery_size)
        if chance < self.match_bound and quality >= self.match_quality:
            band = "match"
        elif expected <= self.possible_strangers and fmr <= self.possible_fmr:
            band = "possible"
        else:
            band = "no-match"
        return Assessment(fmr, expected, chance, band)

    def decide(self, distance: float, gallery_size: int, quality: float = 1.0) -> str:
        return self.assess(distance, gallery_size, quality).decision


def one_in(stranger_chance: float) -> str:
    """'1 search in 40', 'most searches (80%)', 'fewer than 1 search in a million'."""
    if stranger_chance >= 0.995:
        return "nearly every search"
    if stranger_chance >= 0.5:
        return f"most searches ({stranger_chance:.0%})"
    if stranger_chance <= 0:
        return "no search"
    n = 1.0 / stranger_chance
    if n >= 1e6:
        return "fewer than 1 search in a million"
    return f"1 search in {_round(n)}"


def in_words(stranger_chance: float) -> str:
    """'about 1 search in 40 of a gallery this size shows a stranger this close'."""
    short = one_in(stranger_chance)
    about = "about " if short.startswith("1 ") else ""
    return f"{about}{short} of a gallery this size shows a stranger this close"


def pair_words(fmr: float) -> str:
    """A 1:1 comparison (N = 1): 'about 1 pair in 4,000 of different people is this close'."""
    if fmr >= 0.995:
        return "nearly every pair of different people is this close"
    if fmr >= 0.5:
        return f"most pairs of different people ({fmr:.0%}) are this close"
    if fmr <= 0:
        return "no pair of different people is this close"
    n = 1.0 / fmr
    if n >= 1e6:
        return "fewer than 1 pair in a million of different people is this close"
    return f"about 1 pair in {_round(n)} of different people is this close"


def _round(x: float) -> str:
    """Two significant figures, grouped: 37 -> '37', 1234 -> '1,200'."""
    if x < 10:
        return f"{x:.0f}"
    digits = len(str(int(x))) - 2
    return f"{int(round(x, -digits)):,}"
