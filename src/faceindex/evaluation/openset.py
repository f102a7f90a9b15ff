"""Open-set identification (the 1:N measure of NIST FRTE), pure over descriptors.

A gallery holds one photo per enrolled person plus distractor faces. Mated probes are other
photos of enrolled people; non-mated probes are people held nowhere in the gallery. For each
gallery size this reports:

- rank-1 / rank-10: the enrolled person's face among the first 1 / 10 results;
- the ``match`` band's FPIR (non-mated probes whose first result is called a match) and FNIR
  (mated probes whose first result is not the right person called a match), and how many
  mated probes got a *wrong* person called a match;
- FNIR at FPIR 0.1 / 0.01 / 0.001 for a threshold on each candidate score ("lever"): the raw
  rank-1 distance, the gap and the ratio to the nearest *other* person, and the rank-1
  distance Z-normalised against the probe's own cohort of gallery distances.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from faceindex.errors import InputError
from faceindex.search.scoring import Decider

__all__ = [
    "FPIRS",
    "LEVERS",
    "OpenSetGallery",
    "Bands",
    "Probe",
    "Ranked",
    "SizeReport",
    "build_open_set",
    "evaluate_open_set",
    "fnir_at_fpir",
    "lever_scores",
    "rank_all",
    "scale_up",
    "size_steps",
    "summarise",
]

FPIRS = (0.1, 0.01, 0.001)
COHORT = slice(10, 100)  # gallery distances ranked 11-100 describe the probe's neighbourhood


@dataclass(frozen=True)
class Probe:
    person: str  # "" for nobody enrolled
    quality: float
    vector: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class OpenSetGallery:
    enrolled: tuple[str, ...]  # the person of each enrolled face
    vectors: np.ndarray = field(repr=False, compare=False)  # enrolled faces first
    distractors: np.ndarray = field(repr=False, compare=False)
    qualities: np.ndarray = field(repr=False, compare=False)  # enrolled, then distractors


@dataclass(frozen=True)
class Ranked:
    """One probe against one gallery: what the levers and the bands are computed from."""

    mated: bool
    hit_rank: int  # rank of the right person's face (0 = not found / non-mated)
    d_true: float  # distance to the right person's face (inf for non-mated probes)
    d1: float  # rank-1 distance
    d_other: float  # nearest face of a different identity than rank-1
    cohort_mean: float
    cohort_std: float
    band: str  # decision of the rank-1 result
    quality: float  # the probe's
    rank1_quality: float  # the rank-1 gallery face's


@dataclass
class SizeReport:
    gallery: int
    enrolled: int
    distractors: int
    mated: int
    nonmated: int
    rank1: float
    rank10: float
    match_fpir: float
    match_fnir: float
    wrong_person_matches: float  # share of mated probes whose rank-1 is someone else, "match"
    possible_rank1: float  # mated probes whose right face is rank-1 in match or possible
    listed_fpir: float  # non-mated probes whose rank-1 is in match or possible
    fnir_at_fpir: dict[str, dict[str, float | None]] = field(default_factory=dict)


def build_open_set(
    people: dict[str, list[Probe]],
    distractors: Sequence[Probe],
    nonmated: Collection[str],
) -> tuple[OpenSetGallery, list[Probe], list[Probe]]:
    """Enrol each person's first face (in file order), except the ``nonmated`` people, whose
    every face becomes a non-mated probe; everyone else's other faces are mated probes."""
    enrolled, faces_in, mated, strangers = [], [], [], []
    for person, faces in people.items():
        if not faces:
            continue
        if person in nonmated:
            strangers += [Probe("", f.quality, f.vector) for f in faces]
            continue
        enrolled.append(person)
        faces_in.append(faces[0])
        mated += [Probe(person, f.quality, f.vector) for f in faces[1:]]
    every = [*faces_in, *distractors]
    if not faces_in:
        raise InputError("nobody is enrolled: the gallery needs people with a face found")
    dim = len(faces_in[0].vector)

    def stack(ps: Sequence[Probe]) -> np.ndarray:
        return np.stack([p.vector for p in ps]).astype(np.float64) if ps else np.empty((0, dim))

    gallery = OpenSetGallery(
        tuple(enrolled),
        stack(faces_in),
        stack(distractors),
        np.array([p.quality for p in every], dtype=np.float64),
    )
    return gallery, mated, strangers


def lever_scores(rows: Sequence[Ranked]) -> dict[str, np.ndarray]:
    """Each lever's score of each ranked probe; lower = more like a match."""
    d1 = np.array([r.d1 for r in rows])
    other = np.array([r.d_other for r in rows])
    mean = np.array([r.cohort_mean for r in rows])
    std = np.array([max(r.cohort_std, 1e-6) for r in rows])
    return {
        "distance": d1,
        "gap": -(other - d1),
        "ratio": d1 / np.maximum(other, 1e-6),
        "znorm": (d1 - mean) / std,
    }


LEVERS = ("distance", "gap", "ratio", "znorm")


def fnir_at_fpir(
    mated_score: np.ndarray,
    mated_hit: np.ndarray,
    nonmated_score: np.ndarray,
    fpir: float,
) -> float | None:
    """FNIR when the threshold on a lower-is-better score lets at most ``fpir`` of the
    non-mated probes through; None when there are too few non-mated probes to tell."""
    n = len(nonmated_score)
    if n == 0 or fpir * n < 1:
        return None
    allowed = int(np.floor(fpir * n))
    ordered = np.sort(nonmated_score)
    threshold = ordered[allowed] if allowed < n else np.inf  # strictly below this one
    accepted = (mated_score < threshold) & mated_hit
    return float(1.0 - accepted.mean()) if len(mated_score) else None


def _rank(
    probe: Probe,
    vectors: np.ndarray,
    qualities: np.ndarray,
    identities: Sequence[str],
    decide: Callable[[float, float], str],
) -> Ranked:
    d = np.sqrt(np.maximum(((vectors - probe.vector[None, :]) ** 2).sum(1), 0.0))
    order = np.argsort(d, kind="stable")
    first = identities[order[0]]
    other = next((d[j] for j in order[1:] if identities[j] != first), np.inf)
    hit, d_true = 0, float("inf")
    if probe.person:
        where = np.nonzero(np.asarray(identities)[order] == probe.person)[0]
        if len(where):
            hit, d_true = int(where[0]) + 1, float(d[order[where[0]]])
    cohort = d[order][COHORT]
    if len(cohort) < 2:
        cohort = d[order][1:]
    return Ranked(
        mated=bool(probe.person),
        hit_rank=hit,
        d_true=d_true,
        d1=float(d[order[0]]),
        d_other=float(other),
        cohort_mean=float(cohort.mean()) if len(cohort) else 0.0,
        cohort_std=float(cohort.std()) if len(cohort) > 1 else 1.0,
        band=decide(float(d[order[0]]), min(probe.quality, float(qualities[order[0]]))),
        quality=probe.quality,
        rank1_quality=float(qualities[order[0]]),
    )


class Bands(Protocol):
    def decide(self, distance: float, gallery_size: int, quality: float = 1.0) -> str: ...


def rank_all(
    gallery: OpenSetGallery,
    probes: Sequence[Probe],
    bands: Bands,
    count: int,
    *,
    seed: int = 0,
) -> list[Ranked]:
    """Every probe ranked against the enrolled faces plus ``count`` distractors (a seeded,
    nested draw: a larger count holds the smaller one's distractors)."""
    shuffled = np.random.default_rng(seed).permutation(len(gallery.distractors))
    take = shuffled[:count]
    n_enrolled = len(gallery.enrolled)
    vectors = np.concatenate([gallery.vectors, gallery.distractors[take]])
    qualities = np.concatenate(
        [gallery.qualities[:n_enrolled], gallery.qualities[n_enrolled + take]]
    )
    identities = list(gallery.enrolled) + [f"\0distractor{i}" for i in range(count)]
    n = len(vectors)

    def band(d: float, quality: float) -> str:
        return bands.decide(d, n, quality)

    return [_rank(p, vectors, qualities, identities, band) for p in probes]


def size_steps(distractors: int, steps: int = 4) -> list[int]:
    return sorted({round(distractors * i / steps) for i in range(steps + 1)})


def evaluate_open_set(
    gallery: OpenSetGallery,
    mated: Sequence[Probe],
    nonmated: Sequence[Probe],
    bands: Bands,
    *,
    sizes: Sequence[int] | None = None,
    seed: int = 0,
) -> list[SizeReport]:
    """One report per gallery size: distractor counts (default: 0, 1/4 .. all of them)."""
    n_dis = len(gallery.distractors)
    counts = sorted(set(sizes)) if sizes else size_steps(n_dis)
    out = []
    for count in (c for c in counts if 0 <= c <= n_dis):
        rows_m = rank_all(gallery, mated, bands, count, seed=seed)
        rows_n = rank_all(gallery, nonmated, bands, count, seed=seed)
        out.append(
            summarise(len(gallery.enrolled) + count, len(gallery.enrolled), count, rows_m, rows_n)
        )
    return out


def summarise(
    n: int, enrolled: int, count: int, rows_m: Sequence[Ranked], rows_n: Sequence[Ranked]
) -> SizeReport:
    """The measures over ranked probes (of one gallery, or pooled over several)."""
    hit1 = np.array([r.hit_rank == 1 for r in rows_m], dtype=bool)
    hit10 = np.array([0 < r.hit_rank <= 10 for r in rows_m], dtype=bool)
    matched_m = np.array([r.band == "match" for r in rows_m], dtype=bool)
    listed_m = np.array([r.band in ("match", "possible") for r in rows_m], dtype=bool)
    matched_n = np.array([r.band == "match" for r in rows_n], dtype=bool)
    listed_n = np.array([r.band in ("match", "possible") for r in rows_n], dtype=bool)

    def share(x: np.ndarray) -> float:
        return float(x.mean()) if len(x) else float("nan")

    report = SizeReport(
        gallery=n,
        enrolled=enrolled,
        distractors=count,
        mated=len(rows_m),
        nonmated=len(rows_n),
        rank1=share(hit1),
        rank10=share(hit10),
        match_fpir=share(matched_n),
        match_fnir=share(~(hit1 & matched_m)),
        wrong_person_matches=share(~hit1 & matched_m),
        possible_rank1=share(hit1 & listed_m),
        listed_fpir=share(listed_n),
    )
    if rows_m and rows_n:
        sm, sn = lever_scores(rows_m), lever_scores(rows_n)
        for lever in LEVERS:
            report.fnir_at_fpir[lever] = {
                f"{f:g}": fnir_at_fpir(sm[lever], hit1, sn[lever], f) for f in FPIRS
            }
    return report


def scale_up(
    decider: Decider,
    genuine: np.ndarray,
    sizes: Sequence[int],
    *,
    rank: int = 10,
) -> list[dict[str, float]]:
    """The calibration's FMR curve applied to galleries of ``sizes`` faces.

    ``genuine`` are the distances of mated probes to their own enrolled face. Strangers at
    least as close as ``d`` in a gallery of N are taken as Poisson(fmr(d) * N), so a mated
    probe stays within the first ``rank`` results with probability P(strangers < rank), and
    is called a match only where the decider's band for (d, N) says so."""
    g = np.asarray(genuine, dtype=np.float64)
    g = g[np.isfinite(g)]
    out = []
    for n in sizes:
        lam = np.array([decider.calibration.expected_strangers(d, n) for d in g])
        bands = [decider.decide(float(d), n) for d in g]  # good faces: quality not applied
        out.append(
            {
                "gallery": float(n),
                "match_fnir": float(np.mean([b != "match" for b in bands])),
                "listed": float(np.mean([b != "no-match" for b in bands])),
                f"rank{rank}": float(_poisson_below(rank, lam).mean()),
                "rank1": float(np.exp(-lam).mean()),
            }
        )
    return out


def _poisson_below(k: int, lam: np.ndarray) -> np.ndarray:
    """P(X < k) for X ~ Poisson(lam), elementwise."""
    term = np.exp(-lam)
    total = term.copy()
    for i in range(1, k):
        term = term * lam / i
        total += term
    return np.minimum(total, 1.0)
