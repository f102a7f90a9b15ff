"""Restricted search on a built FAISS index: a case that may search only some faces.

    .venv/bin/python benchmarks/restricted.py /tmp/faceindex-bench/index-ivf-1000000 \\
        --probes /tmp/faceindex-bench/probes.npy --truth /tmp/faceindex-bench/truth_p.npy

For each size, a random set of that many indexed ids stands for the faces of the sources a
case may search. Times ``search(q, 10, within=ids)`` one probe at a time, next to the
unrestricted search on the same probes. Sets no larger than the index's re-rank are scanned
exactly; larger ones go through the IVF scan with a selector, and their recall@10 is
measured against the exact scan of the same set (the index opened with a re-rank as large
as the set).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from faceindex.index.faiss_index import FaissIndex

K = 10


def p50_ms(fn: object, probes: np.ndarray) -> tuple[float, float]:
    lat = []
    for q in probes:
        t0 = time.perf_counter()
        fn(q[None, :])  # type: ignore[operator]
        lat.append(time.perf_counter() - t0)
    return 1000 * float(np.median(lat)), 1000 * float(np.percentile(lat, 99))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("directory", type=Path, help="a faiss index directory")
    ap.add_argument("--probes", type=Path, required=True, help=".npy of query vectors")
    ap.add_argument(
        "--truth",
        type=Path,
        help=".npy of the probes' exact top-10 ids: each set then also holds them (the case's "
        "sources hold the person), else the set is random faces only",
    )
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument(
        "--params",
        default="",
        help="faiss URL parameters to open the index with, e.g. refine=none (no RAM tier: "
        "the IVF scan with a selector for every set past the re-rank) or set_scan_max=1",
    )
    ap.add_argument(
        "--exact-max",
        type=int,
        default=0,
        help="measure recall against the exact scan of the set only up to this size (0: every "
        "size; at 100M the exact scan of a 1M set reads 0.5 GB of raw rows per probe)",
    )
    args = ap.parse_args()
    probes = np.load(args.probes)[: args.queries]
    dim = probes.shape[1]  # the gallery's model's
    extra = f"&{args.params}" if args.params else ""
    index = FaissIndex.from_url(f"faiss://{args.directory}?{extra.lstrip('&')}", dim=dim)
    ids = index.ids()
    rerank = index.options.rerank
    print(f"{index.count():,} faces, kind {index.kind}; {len(probes)} probes, k={K}")
    index.search(probes[:2], K)
    base, p99 = p50_ms(lambda q: index.search(q, K), probes)
    print(f"unrestricted: p50 {base:.2f} ms, p99 {p99:.2f} ms ({args.params or 'defaults'})")
    store = index._store  # which path a set takes: the IVF kind's own rule
    tiered = getattr(store, "_tier", lambda: None)() is not None
    set_scan_max = getattr(store, "set_scan_max", 0) if tiered else 0
    rng = np.random.default_rng(5)
    for size in (int(s) for s in args.sizes.split(",")):
        within = rng.choice(ids, min(size, len(ids)), replace=False)
        if args.truth:
            within = np.r_[within, np.load(args.truth)[: len(probes)].ravel()]
        within = np.unique(within)
        p50, p99 = p50_ms(lambda q, w=within: index.search(q, K, within=w), probes)
        line = (
            f"within {len(within):>10,} ids: p50 {p50:8.2f} ms ({p50 / base:.2f}x unrestricted), "
            f"p99 {p99:8.2f} ms"
        )
        path = "scan of its refine codes" if len(within) <= set_scan_max else "IVF scan"
        if len(within) > rerank and 0 < args.exact_max < len(within):
            line += f", {path}, recall not measured (over --exact-max)"
        elif len(within) > rerank:
            _, got = index.search(probes, K, within=within)
            # the same index with a re-rank as large as the set scans it exactly
            exact = FaissIndex.from_url(
                f"faiss://{args.directory}?refine=none&rerank={len(within)}", dim=dim
            )
            _, want = exact.search(probes, K, within=within)
            assert np.isin(got[got >= 0], within).all()
            hits = sum(len(set(g) & set(w)) for g, w in zip(got, want, strict=True))
            line += f", {path}, recall@10 {hits / want.size:.3f} vs exact"
        else:
            line += ", exact over the set"
        print(line, flush=True)
    index.close()


if __name__ == "__main__":
    main()
