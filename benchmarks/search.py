"""Search benchmark: every FAISS index kind on a synthetic gallery spread like dlib's.

    .venv/bin/python benchmarks/search.py --n 1000000
    .venv/bin/python benchmarks/search.py --n 10000000 --kinds ivf --baseline-max-gb 6
    .venv/bin/python benchmarks/search.py --n 100000000 --kinds ivf --stream --queries 500

Per kind: build time and peak RSS, bytes per face in RAM (RssAnon growth of a fresh process
opening the saved index: what serving costs; file-backed pages are the OS cache and not
counted) and on disk, single-query p50/p99 (on probes not sent before, so that the vectors
their re-ranking reads are not already cached), batched throughput, recall@10 against
exact search (for new photos of gallery people, and for strangers). In the same run: numpy
brute force and a plain memory scan (one BLAS pass over every stored float), with ratios.
Every phase runs in its own process so that RAM figures do not leak between phases. The
gallery is generated in chunks to a file (never all in RAM), or with --stream made again
by each build, the ground truth gathered on the way (no second copy of the vectors).
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synthetic  # noqa: E402
from galleries import CHUNK, DIM, K, TopK, chunks, gallery, generated, ground_truth  # noqa: E402


def rss_kib(field: str = "RssAnon") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def peak_rss_kib() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def in_child(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def fresh_probes(n: int, gallery_n: int) -> np.ndarray:
    """Probes no earlier timing has sent: re-timing the same ones would find the vectors
    their re-ranking reads already in the page cache (at 100M, a 51 GB file that is not)."""
    variant = time.time_ns() % 2**31
    return synthetic.probes(synthetic.Spread.load(), n, CHUNK, gallery_n=gallery_n, variant=variant)


def timings(
    search: Callable[[np.ndarray], Any],
    queries: np.ndarray,
    single: int,
    fresh: np.ndarray | None = None,
) -> dict:
    """Single-query p50/p99 (on ``fresh`` probes if given) and batched throughput."""
    search(queries[:2])  # warm caches and thread pools
    lat = []
    for q in (fresh if fresh is not None else queries)[:single]:
        t0 = time.perf_counter()
        search(q[None, :])
        lat.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    search(queries)
    batch = time.perf_counter() - t0
    return {
        "p50_ms": round(1000 * float(np.percentile(lat, 50)), 3),
        "p99_ms": round(1000 * float(np.percentile(lat, 99)), 3),
        "batch_qps": round(len(queries) / batch, 1),
    }


# -- phases (each in a fresh process) --------------------------------------------------------


def phase_build(
    path: str, n: int, directory: str, query: str, work: str = "", truth: bool = False
) -> dict[str, Any]:
    """Build from the gallery file, or (no ``path``) from chunks made on the fly; with
    ``truth``, gather the ground truth of the saved queries on the way."""
    from faceindex.index.faiss_index import FaissIndex

    t0 = time.perf_counter()
    clock = [0.0]
    top = None
    if truth:
        probes, strangers = np.load(f"{work}/probes.npy"), np.load(f"{work}/strangers.npy")
        top = TopK(np.vstack([probes, strangers]))
    batches = chunks(Path(path), n) if path else generated(n, top, clock)
    index = FaissIndex.from_url(f"faiss://{directory}?{query}", dim=DIM)
    kind = "flat" if "kind=flat" in query else "ivf"
    index.rebuild(batches, kind=kind)
    index.close()
    out = {
        "build_s": round(time.perf_counter() - t0 - clock[0], 1),
        "build_peak_rss_mib": peak_rss_kib() // 1024,
    }
    if top is not None:
        np.save(f"{work}/truth_p.npy", top.best_i[: len(probes)])
        np.save(f"{work}/truth_s.npy", top.best_i[len(probes) :])
        out["made_with_truth_s"] = round(clock[0], 1)
    elif not path:
        out["made_s"] = round(clock[0], 1)
    return out


def interleaved(search: Callable[[np.ndarray], Any], gallery: str, queries: np.ndarray) -> dict:
    """Exact search vs a plain memory scan, alternated query by query so that load from
    other processes on the machine hits both alike."""
    xs = np.fromfile(gallery, dtype=np.float32).reshape(-1, DIM)
    scan, exact = [], []
    for q in queries:
        t0 = time.perf_counter()
        xs @ q
        t1 = time.perf_counter()
        search(q[None, :])
        scan.append(t1 - t0)
        exact.append(time.perf_counter() - t1)
    s50, e50 = float(np.median(scan)) * 1000, float(np.median(exact)) * 1000
    return {
        "scan_p50_ms": round(s50, 2),
        "exact_p50_ms": round(e50, 2),
        "ratio": round(e50 / s50, 2),
    }


def evict_raw(directory: str) -> None:
    """Drop the index's raw vectors from the OS page cache (this file only, so other
    processes on the box keep theirs): the re-rank's reads then go to disk, as at 100M faces,
    where the 51 GB raw file does not fit in the cache."""
    for path in Path(directory).glob("vectors.*.f32"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def phase_variants(
    directory: str, query: str, work: str, single: int, variants: str, evict: bool
) -> list[dict[str, Any]]:
    """The same index under other URL parameters (e.g. the RAM tier on and off). Timed
    round-robin, one query per variant in turn, so that load from other processes on a
    shared box hits every variant alike; each variant has its own fresh probes (the rows
    one re-ranks must not be cached by another). ``ratio``: p50 over the first variant's."""
    from faceindex.index.faiss_index import FaissIndex

    probes, strangers = np.load(f"{work}/probes.npy"), np.load(f"{work}/strangers.npy")
    truth_p, truth_s = np.load(f"{work}/truth_p.npy"), np.load(f"{work}/truth_s.npy")
    names = [v for v in variants.split(";") if v]
    opened = [FaissIndex.from_url(f"faiss://{directory}?{query}&{v}", dim=DIM) for v in names]
    rows: list[dict[str, Any]] = []
    for name, ix in zip(names, opened, strict=True):
        row: dict[str, Any] = {"params": name}
        row["recall_probe"] = round(recall(ix.search(probes, K)[1], truth_p), 4)
        row["recall_stranger"] = round(recall(ix.search(strangers, K)[1], truth_s), 4)
        t0 = time.perf_counter()
        ix.search(probes, K)
        row["batch_qps"] = round(len(probes) / (time.perf_counter() - t0), 1)
        rows.append(row)
    fresh = [fresh_probes(single, opened[0].count()) for _ in opened]
    if evict:
        evict_raw(directory)
    lat: list[list[float]] = [[] for _ in opened]
    for i in range(single):
        for v, ix in enumerate(opened):
            t0 = time.perf_counter()
            ix.search(fresh[v][i][None, :], K)
            lat[v].append(time.perf_counter() - t0)
    for row, times in zip(rows, lat, strict=True):
        row["p50_ms"] = round(1000 * float(np.percentile(times, 50)), 3)
        row["p99_ms"] = round(1000 * float(np.percentile(times, 99)), 3)
        row["ratio"] = round(row["p50_ms"] / rows[0]["p50_ms"], 2)
        print("  variant", json.dumps(row), flush=True)
    for ix in opened:
        ix.close()
    return rows


def phase_retrain_refine(directory: str, query: str) -> dict[str, Any]:
    """Train the IVF kind's RAM tier anew under ``query`` (e.g. refine=pca), lists kept."""
    from faceindex.index.faiss_index import FaissIndex

    index = FaissIndex.from_url(f"faiss://{directory}?{query}", dim=DIM)
    t0 = time.perf_counter()
    rows = index.retrain_refine()
    out = {"retrain_refine_s": round(time.perf_counter() - t0, 1), "rows": rows}
    out.update({k: index.stats().details.get(k) for k in ("refine", "refine_code_bytes")})
    index.close()
    print("  retrained", json.dumps(out), flush=True)
    return out


def phase_serve(
    directory: str, query: str, work: str, single: int, sweep: str = "", gallery: str = ""
) -> dict[str, Any]:
    import faiss  # noqa: F401  (its import is not the index's memory)

    from faceindex.index.faiss_index import FaissIndex

    probes, strangers = np.load(f"{work}/probes.npy"), np.load(f"{work}/strangers.npy")
    truth_p, truth_s = np.load(f"{work}/truth_p.npy"), np.load(f"{work}/truth_s.npy")
    gc.collect()
    before = rss_kib()
    index = FaissIndex.from_url(f"faiss://{directory}?{query}", dim=DIM)
    ram = (rss_kib() - before) * 1024
    stats = index.stats()
    out: dict[str, Any] = {"kind": stats.kind, "count": stats.count, "trained_on": stats.trained_on}
    count = index.count()
    out.update(timings(lambda q: index.search(q, K), probes, single, fresh_probes(single, count)))
    out["recall_probe"] = round(recall(index.search(probes, K)[1], truth_p), 4)
    out["recall_stranger"] = round(recall(index.search(strangers, K)[1], truth_s), 4)
    out["ram_bytes_per_face"] = round(ram / stats.count, 1)
    out["ram_est_bytes_per_face"] = round(stats.ram_bytes_per_face, 1)
    out["disk_bytes_per_face"] = round(stats.disk_bytes / stats.count, 1)
    out["serve_rss_file_mib"] = rss_kib("RssFile") // 1024
    out["details"] = {
        k: stats.details[k]
        for k in ("nlist", "pq_m", "nprobe", "rerank", "storage")
        if k in stats.details
    }
    if gallery and stats.kind == "flat":
        out["vs_scan"] = interleaved(lambda q: index.search(q, K), gallery, probes[:single])
    index.close()
    out["sweep"] = []
    for nprobe in [int(v) for v in sweep.split(",") if v]:
        swept = FaissIndex.from_url(f"faiss://{directory}?{query}&nprobe={nprobe}", dim=DIM)
        row: dict[str, Any] = {"nprobe": nprobe}
        fresh = fresh_probes(single, count)
        row.update(timings(lambda q, ix=swept: ix.search(q, K), probes, single, fresh))
        row["recall_probe"] = round(recall(swept.search(probes, K)[1], truth_p), 4)
        row["recall_stranger"] = round(recall(swept.search(strangers, K)[1], truth_s), 4)
        out["sweep"].append(row)
        print("  sweep", json.dumps(row), flush=True)
        swept.close()
    return out


def phase_baselines(path: str, n: int, work: str, single: int) -> dict[str, Any]:
    """numpy brute force, the plain memory scan, and FAISS's flat kernel on one array."""
    import faiss

    probes = np.load(f"{work}/probes.npy")
    xs = np.empty((n, DIM), dtype=np.float32)
    for ids, vecs in chunks(Path(path), n):
        xs[ids[0] - 1 : ids[-1]] = vecs
    norms = (xs * xs).sum(1)

    def scan(q: np.ndarray) -> np.ndarray:
        return xs @ q[0]

    def numpy_bf(q: np.ndarray) -> np.ndarray:
        d2 = norms[None, :] - 2 * (q @ xs.T) + (q * q).sum(1)[:, None]
        top = np.argpartition(d2, K, axis=1)[:, :K]
        return np.take_along_axis(top, np.argsort(np.take_along_axis(d2, top, 1), 1), 1)

    single = max(5, min(single, int(3e8 / n)))  # seconds per query at 10M+
    out = {
        "memory_scan": timings(scan, probes[:1].repeat(2, 0), single),
        "numpy_bruteforce": timings(numpy_bf, probes[:10], single),
        "faiss_flat_kernel": timings(lambda q: faiss.knn(q, xs, K), probes[:100], single),
    }
    gib = xs.nbytes / 2**30
    out["memory_scan"]["gib_per_s"] = round(gib / (out["memory_scan"]["p50_ms"] / 1000), 2)
    return out


# -- driver ----------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument(
        "--kinds", default="flat,ivf,ivf-disk", help="comma list of flat, ivf, ivf-disk"
    )
    ap.add_argument("--queries", type=int, default=1000, help="probes (gallery people)")
    ap.add_argument("--single", type=int, default=300, help="queries timed one at a time")
    ap.add_argument("--params", default="", help="extra faiss URL parameters, e.g. nprobe=48")
    ap.add_argument("--sweep", default="", help="IVF kinds: also time these nprobe values")
    ap.add_argument(
        "--baseline-max-gb",
        type=float,
        default=6.0,
        help="skip the in-RAM baselines and flat kind above this many GiB",
    )
    ap.add_argument(
        "--stream",
        action="store_true",
        help="write no gallery file: each build makes the chunks itself (and the first one "
        "gathers the ground truth); for 100M, where the file would be a second 51 GB copy",
    )
    ap.add_argument(
        "--serve-only",
        action="store_true",
        help="time the indexes an earlier run built in --work (with its ground truth), "
        "e.g. under other --params",
    )
    ap.add_argument(
        "--drop-caches",
        action="store_true",
        help="before serving, drop the OS page cache (root): time a cold start from disk",
    )
    ap.add_argument(
        "--variants",
        default="",
        help="IVF kinds: also time the index under these ';'-separated URL parameter sets, "
        "with p50 ratios against the first (e.g. 'refine=none;refine=pq&refine_exact=50')",
    )
    ap.add_argument(
        "--evict-raw",
        action="store_true",
        help="before timing each variant, drop the raw vectors file from the page cache "
        "(posix_fadvise, this file only): re-rank reads come from disk, as at 100M",
    )
    ap.add_argument(
        "--retrain-refine",
        action="store_true",
        help="IVF kinds, with --serve-only: first train the RAM tier anew under --params "
        "(e.g. refine=pca), keeping the lists: one pass over the raw file",
    )
    ap.add_argument("--work", type=Path, default=Path("/tmp/faceindex-bench"))
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    n, work = args.n, args.work
    spread = synthetic.Spread.load()
    probes = synthetic.probes(spread, args.queries, CHUNK, gallery_n=n)
    strangers = synthetic.strangers(spread, max(args.queries // 5, 50))
    np.save(work / "probes.npy", probes)
    np.save(work / "strangers.npy", strangers)
    path = None if args.stream or args.serve_only else gallery(work, n)
    made = {"n": n, "queries": len(probes), "strangers": len(strangers)}
    known = work / "truth.json"
    if known.exists() and json.loads(known.read_text()) == made and path is not None:
        print(f"ground truth of an earlier run reused ({known})", flush=True)
    elif path is not None and not args.serve_only:
        t0 = time.perf_counter()
        np.save(work / "truth_p.npy", ground_truth(path, n, probes))
        np.save(work / "truth_s.npy", ground_truth(path, n, strangers))
        known.write_text(json.dumps(made))  # same n, same probes (seeded): reusable
        print(
            f"ground truth for {len(probes) + len(strangers)} queries: "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    results: dict[str, Any] = {"n": n, "queries": len(probes), "kinds": {}}
    fits = path is not None and n * DIM * 4 / 2**30 <= args.baseline_max_gb
    if fits:
        results["baselines"] = in_child(phase_baselines, str(path), n, str(work), args.single)
        print(json.dumps(results["baselines"]), flush=True)
    else:
        why = "--stream" if path is None else f"> --baseline-max-gb {args.baseline_max_gb}"
        print(
            f"baselines and flat kind skipped: {n * DIM * 4 / 2**30:.1f} GiB of vectors, {why}",
            flush=True,
        )
    for kind in args.kinds.split(","):
        if kind == "flat" and not fits:
            continue
        query = {"flat": "kind=flat", "ivf": "kind=ivf", "ivf-disk": "kind=ivf&storage=disk"}[kind]
        query += f"&{args.params}" if args.params else ""
        directory = work / f"index-{kind}-{n}"
        first_streamed = path is None and not results["kinds"]
        src = str(path) if path else ""
        res = (
            {"build_s": "-"}
            if args.serve_only
            else in_child(phase_build, src, n, str(directory), query, str(work), first_streamed)
        )
        if args.retrain_refine and args.serve_only and kind != "flat":
            res.update(in_child(phase_retrain_refine, str(directory), query))
        sweep = args.sweep if kind != "flat" else ""
        if args.drop_caches:
            os.sync()
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
        res.update(in_child(phase_serve, str(directory), query, str(work), args.single, sweep, src))
        if args.variants and kind != "flat":
            res["variants"] = in_child(
                phase_variants, str(directory), query, str(work), args.single, args.variants,
                args.evict_raw,
            )  # fmt: skip
        results["kinds"][kind] = res
        print(kind, json.dumps(res), flush=True)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def report(r: dict[str, Any]) -> None:
    print(f"\nN = {r['n']:,}, {r['queries']} probe queries, k = {K}")
    base = r.get("baselines")
    if base:
        scan = base["memory_scan"]["p50_ms"]
        print(
            f"memory scan (one BLAS pass over all floats): p50 {scan} ms "
            f"({base['memory_scan']['gib_per_s']} GiB/s)"
        )
        for name in ("numpy_bruteforce", "faiss_flat_kernel"):
            b = base[name]
            print(
                f"{name}: p50 {b['p50_ms']} ms ({b['p50_ms'] / scan:.2f}x scan), "
                f"batch {b['batch_qps']} q/s"
            )
    head = (
        "kind      build_s  ram B/face  disk B/face  p50 ms  p99 ms  batch q/s"
        "  recall@10 (probe/stranger)"
    )
    print(head)
    for kind, x in r["kinds"].items():
        ratio = f"  [{x['p50_ms'] / base['memory_scan']['p50_ms']:.2f}x scan]" if base else ""
        print(
            f"{kind:9} {x['build_s']:7} {x['ram_bytes_per_face']:11} {x['disk_bytes_per_face']:12} "
            f"{x['p50_ms']:7} {x['p99_ms']:7} {x['batch_qps']:10} "
            f"{x['recall_probe']:.4f}/{x['recall_stranger']:.4f}{ratio}"
        )
        if "vs_scan" in x:
            v = x["vs_scan"]
            print(
                f"  exact vs memory scan, alternated: {v['exact_p50_ms']} ms vs "
                f"{v['scan_p50_ms']} ms = {v['ratio']}x"
            )
        for row in x.get("variants", []):
            print(
                f"  {row['params']:<40} p50 {row['p50_ms']} ms ({row['ratio']}x the first), "
                f"p99 {row['p99_ms']} ms, batch {row['batch_qps']} q/s, recall@10 "
                f"{row['recall_probe']:.4f}/{row['recall_stranger']:.4f}"
            )
        for row in x.get("sweep", []):
            print(
                f"  nprobe={row['nprobe']:<5} p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
                f"batch {row['batch_qps']} q/s, recall@10 "
                f"{row['recall_probe']:.4f}/{row['recall_stranger']:.4f}"
            )


if __name__ == "__main__":
    main()
