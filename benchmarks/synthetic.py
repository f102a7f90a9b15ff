"""Synthetic galleries spread like real dlib descriptors, generated in chunks to a file.

Each identity has a centre drawn from the measured between-identity covariance spectrum and
1 + Poisson(3) samples around it drawn from the measured within-identity spectrum
(each sample's noise scaled by a log-normal factor, as some photos of a person differ more)
(benchmarks/dlib_spread.json, from ``benchmarks/dlib_spread.py``; spectra are extended past
the rank the small real set supports by their log-linear tail, then rescaled so the median
same-person and different-people distances equal the measured ones). Random rotations place
the spectra in 128-d, so no real descriptor is reproduced.

    .venv/bin/python benchmarks/synthetic.py --n 100000   # prints the synthetic spread
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DIM = 128


def _extend(eig: np.ndarray) -> np.ndarray:
    """Fill the zero tail of a rank-deficient spectrum by extrapolating its log-linear decay."""
    eig = np.sort(np.asarray(eig, dtype=np.float64))[::-1]
    pos = int((eig > 1e-7).sum())
    lo = max(0, pos - 20)
    slope, icpt = np.polyfit(np.arange(lo, pos), np.log(eig[lo:pos]), 1)
    out = eig.copy()
    out[pos:] = np.exp(icpt + slope * np.arange(pos, len(eig)))
    return out


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    return q * np.sign(np.diag(r))


@dataclass(frozen=True)
class Spread:
    between: np.ndarray  # (DIM, DIM): centre = mean + between @ z
    within: np.ndarray  # (DIM, DIM): sample = centre + within @ z
    mean: np.ndarray
    target_same: float
    target_diff: float

    @classmethod
    def load(cls, path: Path = HERE / "dlib_spread.json", seed: int = 7) -> Spread:
        s = json.loads(path.read_text())
        lw, lb = _extend(s["within_eigenvalues"]), _extend(s["between_eigenvalues"])
        same, diff = s["same_person"]["p50"], s["different_people"]["p50"]
        lw *= same**2 / (2 * lw.sum())  # E|x - y|^2 = 2 tr(W) for two samples of one person
        lb *= (diff**2 - same**2) / (2 * lb.sum())
        rng = np.random.default_rng(seed)
        mean = rng.standard_normal(DIM) * (s["norm"]["p50"] / np.sqrt(DIM))
        return cls(
            between=_rotation(rng) * np.sqrt(lb),
            within=_rotation(rng) * np.sqrt(lw),
            mean=mean,
            target_same=same,
            target_diff=diff,
        )

    def centres(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return (self.mean + rng.standard_normal((n, DIM)) @ self.between.T).astype(np.float32)

    def samples(self, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = rng.standard_normal(centres.shape) @ self.within.T
        noise *= rng.lognormal(0.0, 0.3, size=(len(centres), 1))  # some photos vary more
        return (centres + noise).astype(np.float32)


def gallery_chunks(
    spread: Spread, n: int, chunk: int = 500_000, seed: int = 11
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(face ids, identity ids, vectors) chunks totalling n faces; ids start at 1."""
    rng = np.random.default_rng(seed)
    done, ident = 0, 0
    while done < n:
        take = min(chunk, n - done)
        per = 1 + rng.poisson(3.0, size=take)  # more identities than needed; trimmed below
        per = per[: int(np.searchsorted(np.cumsum(per), take)) + 1]
        labels = np.repeat(np.arange(len(per)), per)[:take]
        centres = spread.centres(len(per), rng)
        vecs = spread.samples(centres[labels], rng)
        yield np.arange(done + 1, done + take + 1, dtype=np.int64), labels + ident, vecs
        done += take
        ident += len(per)


def probes(
    spread: Spread,
    n: int,
    chunk: int,
    seed: int = 11,
    gallery_n: int | None = None,
    variant: int = 0,
) -> np.ndarray:
    """New photos of people in the gallery: re-derive some chunk's centres, fresh noise.
    Each ``variant`` picks other people and other noise (the default is the saved set)."""
    rng = np.random.default_rng(seed)
    take = min(chunk, gallery_n or chunk)
    per = 1 + rng.poisson(3.0, size=take)
    centres = spread.centres(len(per), rng)  # the first chunk's identities: the same draws
    used = int(np.searchsorted(np.cumsum(per), take)) + 1
    pick_rng, noise_rng = (
        (np.random.default_rng(seed + 1), np.random.default_rng(seed + 2))
        if not variant
        else (np.random.default_rng((seed, variant, 1)), np.random.default_rng((seed, variant, 2)))
    )
    pick = pick_rng.integers(0, used, size=n)
    return spread.samples(centres[pick], noise_rng)


def strangers(spread: Spread, n: int, seed: int = 99) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return spread.samples(spread.centres(n, rng), rng)


def measure(vecs: np.ndarray, labels: np.ndarray, pairs: int = 200_000) -> dict[str, float]:
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, len(vecs), (2, pairs))
    d = np.linalg.norm(vecs[a] - vecs[b], axis=1)
    same, diff = d[(labels[a] == labels[b]) & (a != b)], d[labels[a] != labels[b]]
    out = {}
    for name, arr in (("same", same), ("diff", diff)):
        for q in (5, 50, 95):
            out[f"{name}_p{q}"] = round(float(np.percentile(arr, q)), 3)
    out["norm_p50"] = round(float(np.median(np.linalg.norm(vecs, axis=1))), 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    args = ap.parse_args()
    spread = Spread.load()
    ids, labels, vecs = next(gallery_chunks(spread, args.n, chunk=args.n))
    # same-person pairs are rare among random pairs: add neighbours within each identity
    adj = np.flatnonzero(labels[:-1] == labels[1:])  # labels come sorted
    same = np.linalg.norm(vecs[adj] - vecs[adj + 1], axis=1)
    print("synthetic", measure(vecs, labels))
    print("same-person p5/p50/p95", np.percentile(same, [5, 50, 95]).round(3))
    print("target medians: same", spread.target_same, "different", spread.target_diff)


if __name__ == "__main__":
    main()
