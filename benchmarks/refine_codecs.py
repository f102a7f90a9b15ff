"""Which refine codes keep recall when only R of a query's fast-scan candidates are read
exactly: the choice behind the IVF kind's RAM tier (src/faceindex/index/refine.py).

    .venv/bin/python benchmarks/refine_codecs.py /tmp/faceindex-bench --n 1000000

On an index and ground truth that ``benchmarks/search.py`` built in that folder: take each
probe's ``--candidates`` fast-scan candidates (with their fast-scan distances), encode their
raw vectors with each codec (trained on 65 536 gallery faces), rank them by each score, read
the best R exactly, and report recall@10. Offline: nothing is written to the index.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

from faceindex.index.faiss_coarse import search_params
from faceindex.index.faiss_index import FaissIndex
from faceindex.index.faiss_ivf import IvfStore

K = 10


def main() -> None:
    import faiss

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("work", help="the --work folder of benchmarks/search.py")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--candidates", type=int, default=1000)
    ap.add_argument("--reads", default="20,50,100,200")
    ap.add_argument("--strangers", action="store_true", help="the stranger queries instead")
    args = ap.parse_args()
    index = FaissIndex.from_url(f"faiss://{args.work}/index-ivf-{args.n}", dim=128)
    store = index._store
    if not isinstance(store, IvfStore) or store.index is None:
        raise SystemExit("not a trained IVF index")
    which = ("strangers", "truth_s") if args.strangers else ("probes", "truth_p")
    probes = np.load(f"{args.work}/{which[0]}.npy")[: args.queries]
    truth = np.load(f"{args.work}/{which[1]}.npy")[: args.queries]
    params = search_params(store.index, store.nprobe)
    first, cand = store.index.search(probes, args.candidates, params=params)
    rows = store.raw.vectors(store.raw.lookup(cand))
    exact = ((rows - probes[:, None]) ** 2).sum(-1)
    sample = store.raw.sample(65536)

    def recall(score: np.ndarray, reads: int) -> float:
        top = np.argsort(score, 1)[:, :reads]
        ids, dist = np.take_along_axis(cand, top, 1), np.take_along_axis(exact, top, 1)
        best = np.take_along_axis(ids, np.argsort(dist, 1)[:, :K], 1)
        return float(np.mean([len(set(b) & set(t)) / K for b, t in zip(best, truth, strict=True)]))

    def codec(make: Callable[[], object]) -> np.ndarray:
        c: object = make()
        c.train(sample)  # type: ignore[attr-defined]
        flat = rows.reshape(-1, rows.shape[-1])
        back = c.sa_decode(c.sa_encode(flat)).reshape(rows.shape)  # type: ignore[attr-defined]
        return ((back - probes[:, None]) ** 2).sum(-1)

    pq32 = codec(lambda: faiss.IndexPQ(128, 32, 8))
    pca40 = codec(lambda: faiss.index_factory(128, "PCAR80,PQ40"))  # refine=pca, 40 B
    scores = {
        "fast-scan distance alone (32 B, in the lists)": first,
        "pq 32 B alone": pq32,
        "mean of fast-scan and pq 32 B (refine=pq)": (first + pq32) / 2,
        "pca 40 B alone (refine=pca, the default)": pca40,
        "mean of fast-scan and pca 40 B": (first + pca40) / 2,
        "sq4 64 B": codec(lambda: faiss.IndexScalarQuantizer(128, faiss.ScalarQuantizer.QT_4bit)),
        "pq 64 B": codec(lambda: faiss.IndexPQ(128, 64, 8)),
        "exact (every candidate read)": exact,
    }
    reads = [int(r) for r in args.reads.split(",")]
    print(
        f"n={store.count():,}, nprobe={store.nprobe}, {args.candidates} candidates, "
        f"{len(probes)} {which[0]}: recall@10 reading R exact rows"
    )
    for name, score in scores.items():
        cells = "  ".join(f"R={r}: {recall(score, r):.4f}" for r in reads)
        print(f"{name:48} {cells}", flush=True)


if __name__ == "__main__":
    main()
