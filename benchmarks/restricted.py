"""Restricted search on a built FAISS index: a case that may search only some faces.

    .venv/bin/python benchmarks/restricted.py /tmp/faceindex-bench/index-ivf-1000000 \\
        --probes /tmp/faceindex-bench/probes.npy --truth /tmp/faceindex-bench/truth_p.npy \\
        --paths auto,filter,selector

For each size, a random set of that many indexed ids stands for the faces of the sources a
case may search. Times ``search(q, 10, within=ids)`` one probe at a time, round-robin with
the unrestricted search on the same probes (each probe goes through every setting in turn,
so a loaded box slows them alike), each size with probes of its own (``--queries`` of
them: the rows a probe's search read stay cached, so a probe used again would search
faster). ``--paths`` times the set under several of the IVF
kind's restricted paths (``restricted=`` URL parameter: auto, codes, lists, filter,
selector, batch);
auto prints the one it took. Sets no larger than the index's re-rank are scanned exactly;
larger ones get recall@10 against the exact answer over the set: with ``--truth`` the
probes' true top 10, which every set holds; else the exact scan of the same set (the same
index with a re-rank as large as the set, so no second copy is opened).
"""

from __future__ import annotations

import argparse
import mmap
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from faceindex.index.faiss_index import FaissIndex

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search import evict_raw, fresh_probes  # noqa: E402

K = 10


def round_robin(
    fns: dict[str, Callable[[np.ndarray], object]],
    probes: np.ndarray | dict[str, np.ndarray],
    clock: Callable[[], float] = time.perf_counter,
    before: Callable[[], None] = lambda: None,
) -> dict[str, tuple[float, float]]:
    """p50 and p99 in ms of each fn, one probe at a time, every fn on a probe in turn,
    starting one further along for each probe: whichever goes first on a probe reads its
    neighbours' raw rows from disk, the others may find some of them cached. ``probes``:
    the same for every fn, or each fn's own (``--fresh``: then none finds another's rows
    cached). ``before`` runs ahead of each call, untimed."""
    lat: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    mine = probes if isinstance(probes, dict) else dict.fromkeys(names, probes)
    for i in range(min(len(v) for v in mine.values())):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            fn = fns[name]
            before()
            t0 = clock()
            fn(mine[name][i][None, :])
            lat[name].append(clock() - t0)
    return {
        name: (1000 * float(np.median(v)), 1000 * float(np.percentile(v, 99)))
        for name, v in lat.items()
    }


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
        help="faiss URL parameters to open the index with, e.g. tier=on (the RAM tier, as at "
        "100M) or set_scan_max=1",
    )
    ap.add_argument(
        "--paths",
        default="auto",
        help="restricted paths to time each set under, comma-separated: auto (the default "
        "rule), codes (scan of the set's refine codes), lists (the codes of the set's faces "
        "in the probed lists), filter (unrestricted scan, then the "
        "set's candidates kept), selector (IVF scan with an id selector), batch (the same "
        "with FAISS's hash-set selector)",
    )
    ap.add_argument(
        "--exact-max",
        type=int,
        default=0,
        help="measure recall against the exact scan of the set only up to this size (0: every "
        "size; at 100M the exact scan of a 1M set reads 0.5 GB of raw rows per probe); with "
        "--truth the sets hold the probes' exact top 10, which is then the set's: no scan",
    )
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: latency; cpu: CPU seconds of this process, all its threads (the work a "
        "path does, which a loaded box does not inflate; run with OMP_NUM_THREADS=1)",
    )
    ap.add_argument(
        "--fresh",
        action="store_true",
        help="time each setting on probes of its own that no earlier search sent (synthetic, "
        "like search.py's single queries): every search reads its exact rows cold, as at "
        "100M; recall is still measured on --probes",
    )
    ap.add_argument(
        "--evict-raw",
        action="store_true",
        help="drop the raw vectors from the page cache before every timed search, so each "
        "one reads its exact rows from disk (as at 100M, where the raw file is twice the RAM)",
    )
    args = ap.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    sizes = [int(v) for v in args.sizes.split(",")]
    every = np.load(args.probes)
    if len(every) < args.queries * len(sizes):
        raise SystemExit(
            f"{len(every)} probes: {args.queries} for each of {len(sizes)} sizes need "
            f"{args.queries * len(sizes)} (lower --queries)"
        )
    truth = np.load(args.truth) if args.truth else None
    probes = every[: args.queries]
    dim = probes.shape[1]  # the gallery's model's
    index = FaissIndex.from_url(f"faiss://{args.directory}?{args.params}", dim=dim)
    ids = index.ids()
    store = index._store  # the IVF kind's options and path rule, switched per path here
    opts = store.opts
    paths = args.paths.split(",")
    print(f"{index.count():,} faces, kind {index.kind}; {len(probes)} probes, k={K}")
    print(
        f"options: {args.params or 'defaults'}; tier in use: {store._tier() is not None}; "
        f"{args.clock} clock"
    )
    index.search(every[-2:], K)

    def timed_as(path: str, within: np.ndarray) -> Callable[[np.ndarray], object]:
        def run(q: np.ndarray) -> object:
            store.opts = replace(opts, restricted=path)
            return index.search(q, K, within=within)

        return run

    def unrestricted(q: np.ndarray) -> object:
        store.opts = opts
        return index.search(q, K)

    rng = np.random.default_rng(5)
    for n, size in enumerate(sizes):
        mine = slice(n * args.queries, (n + 1) * args.queries)
        probes = every[mine]
        within = rng.choice(ids, min(size, len(ids)), replace=False)
        if truth is not None:
            within = np.r_[within, truth[mine].ravel()]
        within = np.unique(within)
        fns: dict[str, Callable[[np.ndarray], object]] = {"unrestricted": unrestricted}
        fns.update({path: timed_as(path, within) for path in paths})
        evict = (lambda: _evict(index, args.directory)) if args.evict_raw else (lambda: None)
        timed: np.ndarray | dict[str, np.ndarray] = probes
        if args.fresh:
            timed = {name: fresh_probes(args.queries, index.count()) for name in fns}
        times = round_robin(fns, timed, clock, evict)
        base = times["unrestricted"][0]
        print(f"within {len(within):>11,} ids: unrestricted p50 {base:.2f} ms", flush=True)
        want = None
        exact = len(within) <= store.opts.rerank
        if truth is not None and not exact:
            # the set holds each probe's exact top 10 of the whole gallery: its exact top 10
            # over the set too, so no exact scan of the set is needed
            want = truth[mine][:, :K]
        elif not exact and not 0 < args.exact_max < len(within):
            # the same index with a re-rank as large as the set scans it exactly
            store.opts = replace(opts, rerank=len(within), tier="off")
            _, want = index.search(probes, K, within=within)
        for path in paths:
            p50, p99 = times[path]
            store.opts = replace(opts, restricted=path)
            taken = store._restricted_path(K, len(within)) if path == "auto" else path
            line = (
                f"    {path:>8} ({'exact over the set' if exact else taken}): p50 {p50:8.2f} ms "
                f"({p50 / base:.2f}x), p99 {p99:8.2f} ms"
            )
            if want is not None:
                _, got = index.search(probes, K, within=within)
                if not np.isin(got[got >= 0], within).all():
                    raise SystemExit(f"{path}: an id outside the set was returned")
                hits = sum(len(set(g) & set(w)) for g, w in zip(got, want, strict=True))
                line += f", recall@10 {hits / want.size:.3f} vs exact over the set"
            elif not exact:
                line += ", recall not measured (over --exact-max)"
            print(line, flush=True)
        store.opts = opts
    index.close()


def _evict(index: FaissIndex, directory: Path) -> None:
    """The raw rows out of the page cache, this process's mapping of them first (the kernel
    keeps pages a process maps, whatever the advice on the file)."""
    mapped = getattr(index._store, "raw", None)
    if mapped is not None and mapped._advisable is not None:
        mapped._advisable.madvise(mmap.MADV_DONTNEED)
    evict_raw(str(directory))


if __name__ == "__main__":
    main()
