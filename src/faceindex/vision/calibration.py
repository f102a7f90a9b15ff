"""A model's calibration: how often a distance this small happens between different people.

A calibration is data beside the model, measured on labelled photos: for each distance on a
grid, the per-comparison false-match rate (the share of impostor pairs, different people, at
least this close) and true-match rate (the share of genuine pairs, same person, at least this
close). A search compares the probe with every face of the gallery searched, so a gallery of
N faces holds on average ``fmr(d) * N`` strangers at least as close as ``d``, and shows one
with probability ``1 - (1 - fmr(d))^N``. Those two numbers, not the raw distance, decide
whether a result may be called a match.

Few impostor pairs fall in the low tail, so below the distance where ``TAIL_PAIRS`` of them
lie the empirical rate is replaced by an exponential extrapolation (a straight line in
log-FMR), its slope fitted on the tail between ``TAIL_PAIRS`` pairs and the ``TAIL_FIT``
quantile. The distance distribution between different people falls off faster than
exponentially towards zero (it is close to Gaussian there), so the line over-states the rate
below the data: it errs on the side of calling fewer matches.

Pure: no model, no image. The dlib model's table ships as package data (``data/``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from faceindex.errors import InputError, ModelError

__all__ = [
    "Calibration",
    "TAIL_FIT",
    "TAIL_PAIRS",
    "data_name",
    "default_calibration",
    "worst_of",
    "fit_calibration",
    "load_calibration",
]

TAIL_PAIRS = 25  # below this many impostor pairs the empirical rate is extrapolated
TAIL_FIT = 0.02  # the slope of log-FMR is fitted up to this impostor quantile
FMR_FLOOR = 1e-15  # nothing is ever called impossible
GRID = tuple(round(0.01 * i, 2) for i in range(0, 151))  # L2 distances 0.00 .. 1.50
_FORMAT = 1


@dataclass(frozen=True)
class Calibration:
    """Distance -> per-comparison false-match and true-match rates for one model."""

    model: str  # the descriptor tag stored with each face (e.g. dlib-resnet-v1+mirror@1)
    metric: str  # "l2": smaller is more alike
    distances: tuple[float, ...]  # ascending grid
    fmr: tuple[float, ...]  # P(impostor distance <= d), smoothed, non-decreasing, > 0
    tmr: tuple[float, ...]  # P(genuine distance <= d), empirical
    measured_on: str
    identities: int
    impostor_pairs: int
    genuine_pairs: int
    tail: str  # how the low tail was extrapolated

    def __post_init__(self) -> None:
        n = len(self.distances)
        if n < 2 or len(self.fmr) != n or len(self.tmr) != n:
            raise InputError("a calibration needs matching distance, fmr and tmr tables")
        if any(b <= a for a, b in zip(self.distances, self.distances[1:], strict=False)):
            raise InputError("calibration distances must be strictly ascending")
        if any(not 0 < f <= 1 for f in self.fmr) or any(not 0 <= t <= 1 for t in self.tmr):
            raise InputError("calibration rates must lie in (0, 1] (fmr) and [0, 1] (tmr)")

    # -- reading the table ------------------------------------------------------------------

    def fmr_at(self, distance: float) -> float:
        """Per-comparison false-match rate at ``distance`` (log-linear between grid points)."""
        if not math.isfinite(distance) or distance >= self.distances[-1]:
            return 1.0 if not math.isfinite(distance) else self.fmr[-1]
        logs = np.log(np.asarray(self.fmr))
        d = np.asarray(self.distances)
        if distance <= d[0]:
            slope = (logs[1] - logs[0]) / (d[1] - d[0])
            return float(max(FMR_FLOOR, math.exp(logs[0] + slope * (distance - d[0]))))
        return float(math.exp(np.interp(distance, d, logs)))

    def tmr_at(self, distance: float) -> float:
        """Share of same-person pairs at least this close (how much of the truth d keeps)."""
        if not math.isfinite(distance):
            return 1.0
        return float(np.interp(distance, self.distances, self.tmr))

    def expected_strangers(self, distance: float, gallery_size: int) -> float:
        """Mean number of different people at least this close in a gallery of that size."""
        return self.fmr_at(distance) * max(0, gallery_size)

    def stranger_chance(self, distance: float, gallery_size: int) -> float:
        """Probability that a gallery of that size holds any stranger at least this close."""
        f = min(self.fmr_at(distance), 1.0)
        if f >= 1.0:
            return 1.0 if gallery_size > 0 else 0.0
        return float(-math.expm1(max(0, gallery_size) * math.log1p(-f)))

    def distance_for_fmr(self, fmr: float) -> float:
        """The largest distance whose false-match rate is at most ``fmr``."""
        logs = np.log(np.asarray(self.fmr))
        target = math.log(max(fmr, FMR_FLOOR))
        if target <= logs[0]:
            slope = (logs[1] - logs[0]) / (self.distances[1] - self.distances[0])
            return float(max(0.0, self.distances[0] + (target - logs[0]) / slope))
        # fmr is non-decreasing: invert by interpolation over its strictly rising part
        keep = np.concatenate([[True], np.diff(logs) > 0])
        return float(np.interp(target, logs[keep], np.asarray(self.distances)[keep]))

    # -- storage ----------------------------------------------------------------------------

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["format"] = _FORMAT
        data["fmr"] = [float(f"{f:.6g}") for f in self.fmr]
        data["tmr"] = [round(t, 6) for t in self.tmr]
        return data

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), indent=1) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Calibration:
        if data.get("format") != _FORMAT:
            raise InputError(f"unknown calibration format {data.get('format')!r}")
        try:
            return cls(
                model=str(data["model"]),
                metric=str(data["metric"]),
                distances=tuple(float(x) for x in data["distances"]),  # type: ignore[attr-defined]
                fmr=tuple(float(x) for x in data["fmr"]),  # type: ignore[attr-defined]
                tmr=tuple(float(x) for x in data["tmr"]),  # type: ignore[attr-defined]
                measured_on=str(data["measured_on"]),
                identities=int(data["identities"]),  # type: ignore[call-overload]
                impostor_pairs=int(data["impostor_pairs"]),  # type: ignore[call-overload]
                genuine_pairs=int(data["genuine_pairs"]),  # type: ignore[call-overload]
                tail=str(data["tail"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a calibration: {exc}") from exc


def load_calibration(path: Path) -> Calibration:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read calibration {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a calibration")
    return Calibration.from_dict(data)


def data_name(model: str) -> str:
    """The package-data file of a model's calibration, by its descriptor tag."""
    return model.replace("@", "-v").replace("+", "-") + ".calibration.json"


def default_calibration(model: str) -> Calibration:
    """The calibration shipped with a model (by its descriptor tag); ModelError if none."""
    name = data_name(model)
    ref = resources.files("faceindex.vision") / "data" / name
    try:
        text = ref.read_text()
    except (FileNotFoundError, OSError) as exc:
        raise ModelError(
            f"no calibration ships for model {model!r}; measure one with "
            "`faceindex eval folder ROOT --calibrate FILE` and set calibration_path"
        ) from exc
    cal = Calibration.from_dict(json.loads(text))
    if cal.model != model:
        raise ModelError(f"calibration {name} is for {cal.model!r}, not {model!r}")
    return cal


def fit_calibration(
    impostor: np.ndarray,
    genuine: np.ndarray,
    *,
    model: str,
    measured_on: str,
    identities: int,
    metric: str = "l2",
    grid: tuple[float, ...] = GRID,
) -> Calibration:
    """A calibration from impostor and genuine distances (non-finite ones are dropped)."""
    imp = np.sort(np.asarray(impostor, dtype=np.float64))
    gen = np.sort(np.asarray(genuine, dtype=np.float64))
    imp, gen = imp[np.isfinite(imp)], gen[np.isfinite(gen)]
    if len(imp) < 4 * TAIL_PAIRS or len(gen) < 1:
        raise InputError(
            f"a calibration needs at least {4 * TAIL_PAIRS} impostor pairs and one genuine "
            f"pair (got {len(imp)} and {len(gen)}): use more people"
        )
    d = np.asarray(grid, dtype=np.float64)
    n = len(imp)
    empirical = np.searchsorted(imp, d, side="right") / n
    # The tail: order statistics from the TAIL_PAIRS-th up to the TAIL_FIT quantile.
    hi = max(TAIL_PAIRS + 2, int(TAIL_FIT * n))
    ks = np.arange(TAIL_PAIRS, hi + 1)
    xs, ys = imp[ks - 1], np.log(ks / n)
    slope = float(np.polyfit(xs, ys, 1)[0]) if np.ptp(xs) > 0 else 50.0
    slope = max(slope, 1.0)  # a flat or inverted fit would claim nothing; keep a rise
    d_tail = float(imp[TAIL_PAIRS - 1])
    log_tail = math.log(TAIL_PAIRS / n)
    extrapolated = np.exp(log_tail + slope * (d - d_tail))
    fmr = np.where(d < d_tail, extrapolated, empirical)
    fmr = np.maximum.accumulate(np.clip(fmr, FMR_FLOOR, 1.0))
    tmr = np.searchsorted(gen, d, side="right") / len(gen)
    tail = (
        f"below d={d_tail:.3f} ({TAIL_PAIRS} of {n} impostor pairs) the FMR is "
        f"exp({log_tail:.3f} + {slope:.2f}*(d - {d_tail:.3f})): a log-linear fit of the "
        f"impostor tail up to its {TAIL_FIT:g} quantile, conservative for a tail that "
        "falls faster than exponential"
    )
    return Calibration(
        model=model,
        metric=metric,
        distances=tuple(float(x) for x in d),
        fmr=tuple(float(x) for x in fmr),
        tmr=tuple(float(x) for x in tmr),
        measured_on=measured_on,
        identities=identities,
        impostor_pairs=n,
        genuine_pairs=len(gen),
        tail=tail,
    )


def worst_of(cals: list[Calibration], *, measured_on: str) -> Calibration:
    """One calibration that, at every distance, takes the highest false-match rate of
    ``cals`` (each measured on one collection: strangers photographed alike come closer than
    strangers across collections, so pooling would dilute the hardest). TMR is the
    pair-weighted mean."""
    if not cals:
        raise InputError("worst_of needs at least one calibration")
    first = cals[0]
    if any(c.distances != first.distances or c.model != first.model for c in cals):
        raise InputError("calibrations on different grids or models cannot be combined")
    fmr = np.max(np.array([c.fmr for c in cals]), axis=0)
    weights = np.array([c.genuine_pairs for c in cals], dtype=np.float64)
    tmr = (np.array([c.tmr for c in cals]) * weights[:, None]).sum(0) / max(weights.sum(), 1)
    return Calibration(
        model=first.model,
        metric=first.metric,
        distances=first.distances,
        fmr=tuple(float(x) for x in np.maximum.accumulate(fmr)),
        tmr=tuple(float(x) for x in tmr),
        measured_on=measured_on,
        identities=sum(c.identities for c in cals),
        impostor_pairs=sum(c.impostor_pairs for c in cals),
        genuine_pairs=sum(c.genuine_pairs for c in cals),
        tail="the highest FMR of, at each distance: "
        + "; ".join(f"[{c.measured_on}] {c.tail}" for c in cals),
    )
