"""What a FAISS id selector costs IVF fast-scan, by the id range it spans.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/selector_cost.py /tmp/rs1m/index-ivf-1000000 \\
        --probes /tmp/rs1m/probes.npy --truth /tmp/rs1m/truth_p.npy --spread 100 --nprobe 1024

Reads a built IVF index's lists (``ivf.faiss``) and, with ``--spread N``, re-adds its
vectors under ids multiplied by N, so that a bitmap over the ids spans N times as many bits
(x100 on 1M faces: the 12.5 MB bitmap of 100M). For sets of several shares of the
gallery (each holding the probes' true neighbours), times per probe, round-robin, in
thread CPU time: the unrestricted search, an ``IDSelectorBitmap`` (numpy memory and in
huge pages), an ``IDSelectorBatch``, and the bitmap with a fetch of 20 instead of 200.
Ratios are to the unrestricted search (docs/BENCHMARKS.md, "Restricted search past 20k
ids").
"""

from __future__ import annotations

import argparse
import mmap
import sys
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from faceindex.index.rawstore import RawStore  # noqa: E402

FETCH = 200


def huge_bytes(n: int) -> tuple[np.ndarray, mmap.mmap]:
    """n zero bytes in memory advised for transparent huge pages (and the map to keep)."""
    region = mmap.mmap(-1, n + (2 << 20))
    region.madvise(mmap.MADV_HUGEPAGE)
    raw = np.frombuffer(region, dtype=np.uint8)
    start = (-raw.ctypes.data) % (2 << 20)
    return raw[start : start + n], region


def bitmap_of(ids: np.ndarray) -> np.ndarray:
    bitmap = np.zeros((int(ids[-1]) + 8) // 8, dtype=np.uint8)
    np.add.at(bitmap, ids >> 3, np.left_shift(1, ids & 7).astype(np.uint8))
    return bitmap


def round_robin(fns: dict[str, Callable[[np.ndarray], object]], probes: np.ndarray) -> dict:
    lat: dict[str, list[float]] = {name: [] for name in fns}
    for q in probes:
        for name, fn in fns.items():
            t0 = time.thread_time()
            fn(q[None, :])
            lat[name].append(time.thread_time() - t0)
    return {name: 1000 * float(np.median(v)) for name, v in lat.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("directory", type=Path, help="a faiss IVF index directory")
    ap.add_argument("--probes", type=Path, required=True)
    ap.add_argument("--truth", type=Path, required=True, help=".npy of the probes' top-10 ids")
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--spread", type=int, default=1)
    ap.add_argument("--nprobe", type=int, default=1024)
    ap.add_argument("--shares", default="0.001,0.01,0.1")
    args = ap.parse_args()
    probes = np.load(args.probes)[: args.queries]
    truth = np.load(args.truth)[: args.queries] * args.spread
    index = faiss.read_index(str(args.directory / "ivf.faiss"))
    raw = RawStore(args.directory, probes.shape[1])
    if args.spread != 1:
        index.reset()
        for ids, vecs in raw.iter_live():
            index.add_with_ids(vecs, ids * args.spread)
    keys = raw.keys * args.spread
    rng = np.random.default_rng(3)
    plain = faiss.SearchParametersIVF(nprobe=args.nprobe)
    for share in (float(s) for s in args.shares.split(",")):
        chosen = rng.choice(keys, int(share * len(keys)), replace=False)
        within = np.unique(np.r_[chosen, truth.ravel()])
        bitmap = bitmap_of(within)
        huge, region = huge_bytes(len(bitmap))
        huge[:] = bitmap
        selectors = {
            "bitmap": faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap)),
            "bitmap, huge pages": faiss.IDSelectorBitmap(len(huge), faiss.swig_ptr(huge)),
            "batch": faiss.IDSelectorBatch(within),
        }
        params = {
            n: faiss.SearchParametersIVF(nprobe=args.nprobe, sel=s) for n, s in selectors.items()
        }
        fns: dict[str, Callable[[np.ndarray], object]] = {
            "unrestricted": lambda q: index.search(q, FETCH, params=plain)
        }
        for name, p in params.items():
            fns[name] = lambda q, p=p: index.search(q, FETCH, params=p)
        by_bitmap = params["bitmap"]
        fns["bitmap, fetch 20"] = lambda q, p=by_bitmap: index.search(q, 20, params=p)
        times = round_robin(fns, probes)
        base = times.pop("unrestricted")
        cells = ", ".join(f"{name} {t / base:.2f}x" for name, t in times.items())
        print(
            f"spread x{args.spread}, nprobe {args.nprobe}, share {share}, {len(within):,} ids: "
            f"unrestricted {base:.2f} ms; {cells}",
            flush=True,
        )
        del region


if __name__ == "__main__":
    main()
