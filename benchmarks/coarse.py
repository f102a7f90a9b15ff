"""Flat vs nested coarse quantizer: the cost of placing a face, and what it does to recall.

    .venv/bin/python benchmarks/coarse.py                  # nlist 16384 (the 100M setting)
    .venv/bin/python benchmarks/coarse.py --recall-n 2000000 --recall-nlist 4096

1. Assignment: µs per face to find its list among ``--nlist`` centroids (trained by the
   two-level k-means of faceindex.index.faiss_coarse), flat (every centroid) against nested
   (group centres, then the centroids of ADD_PROBE groups), with how often both agree.
2. Recall: IVF-PQ fast-scan indexes over the same ``--recall-n`` gallery whose faces were
   placed flat or nested, searched with the same lists probed (chosen exactly in both);
   recall@10 of their top-200 candidates against exact search.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import faiss
import numpy as np

from faceindex.index import faiss_coarse

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synthetic  # noqa: E402

DIM = 128


def trained(sample: np.ndarray, nlist: int) -> tuple[faiss.Index, faiss.Index, faiss.Index]:
    """A flat quantizer and the nested one trained by two-level k-means (same centroids),
    and the throwaway IVF that owns the nested one (keep it while using it)."""
    holder = faiss.IndexIVFPQFastScan(
        faiss_coarse.new_quantizer(DIM, "l2", nlist, nested=True), DIM, nlist, 64, 4
    )
    faiss_coarse.train_nested(holder, sample)
    nested = faiss.downcast_index(holder.quantizer)
    centroids = np.vstack([nested.reconstruct(i) for i in range(nlist)])
    flat = faiss.IndexFlatL2(DIM)
    flat.add(centroids)
    return flat, nested, holder


def assignment(args: argparse.Namespace, spread: synthetic.Spread) -> None:
    _, _, x = next(synthetic.gallery_chunks(spread, 1_000_000, chunk=1_000_000))
    faces = next(synthetic.gallery_chunks(spread, args.faces, chunk=args.faces, seed=5))[2]
    t0 = time.perf_counter()
    flat, nested, _holder = trained(x[: 30 * args.nlist], args.nlist)
    print(f"two-level k-means, {args.nlist} lists: {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    _, exact = flat.search(faces, 1)
    flat_us = (time.perf_counter() - t0) / len(faces) * 1e6
    t0 = time.perf_counter()
    _, near = nested.search(faces, 1)
    nested_us = (time.perf_counter() - t0) / len(faces) * 1e6
    agree = float((exact == near).mean())
    print(
        f"placing a face among {args.nlist} lists: flat {flat_us:.1f} µs, nested "
        f"{nested_us:.1f} µs ({flat_us / nested_us:.1f}x less), same list {agree:.3f}; "
        f"per 100M faces: {flat_us * 100:.0f} s vs {nested_us * 100:.0f} s"
    )


def recall(args: argparse.Namespace, spread: synthetic.Spread) -> None:
    n, nlist = args.recall_n, args.recall_nlist
    _, _, x = next(synthetic.gallery_chunks(spread, n, chunk=n))
    probes = synthetic.probes(spread, 300, 500_000, gallery_n=n)
    _, truth = faiss.knn(probes, x, 10)
    flat, nested, _holder = trained(x[: 30 * nlist], nlist)
    for name, quantizer in (("flat", flat), ("nested", nested)):
        index = faiss.IndexIVFPQFastScan(quantizer, DIM, nlist, 64, 4)
        index.train(x[:100_000])
        index.add(x)
        for nprobe in (nlist // 32, nlist // 16):
            params = faiss_coarse.search_params(index, nprobe)
            if name == "flat":
                params = faiss.SearchParametersIVF(nprobe=nprobe)
            _, cand = index.search(probes, 200, params=params)
            hits = sum(len(set(c) & set(t)) for c, t in zip(cand, truth, strict=True))
            print(
                f"{n:,} faces, {name:6} placement, nprobe {nprobe}: "
                f"recall@10 in top-200 {hits / truth.size:.4f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--nlist", type=int, default=16384)
    ap.add_argument("--faces", type=int, default=50_000, help="faces placed, timed")
    ap.add_argument("--recall-n", type=int, default=2_000_000)
    ap.add_argument("--recall-nlist", type=int, default=16384)
    args = ap.parse_args()
    spread = synthetic.Spread.load()
    assignment(args, spread)
    recall(args, spread)


if __name__ == "__main__":
    main()
