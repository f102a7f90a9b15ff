"""A copy of a built IVF index whose face ids are spread over a larger id range.

    .venv/bin/python benchmarks/spread_ids.py /tmp/rs1m/index-ivf-1000000 /tmp/rs/sp100/index \\
        --factor 100 --truth /tmp/rs1m/truth_p.npy

Every id becomes ``id * factor`` (in the inverted lists, the id map and the ground truth,
written beside the copy as ``truth_p.npy``); the raw vectors file is linked, not copied.
A restricted search's id bitmap then spans ``factor`` times the ids, as it would in a
gallery that many times larger: 1M faces spread x100 need the 12.5 MB bitmap of 100M,
which misses L2 as it does there, at 1% of the disk and build time (docs/BENCHMARKS.md,
"Restricted search past 20k ids").
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import faiss
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("source", type=Path, help="a faiss IVF index directory")
    ap.add_argument("dest", type=Path, help="the new directory (created)")
    ap.add_argument("--factor", type=int, default=100)
    ap.add_argument("--truth", type=Path, help=".npy of ground-truth ids to spread alike")
    args = ap.parse_args()
    args.dest.mkdir(parents=True, exist_ok=False)
    for f in args.source.iterdir():
        if f.suffix == ".f32":
            os.symlink(f.resolve(), args.dest / f.name)
        elif f.name not in ("ivf.faiss", "idmap.npz"):
            shutil.copy(f, args.dest / f.name)
    index = faiss.read_index(str(args.source / "ivf.faiss"))
    lists = index.invlists
    for list_no in range(index.nlist):
        size = lists.list_size(list_no)
        if size:
            faiss.rev_swig_ptr(lists.get_ids(list_no), size)[:] *= args.factor
    faiss.write_index(index, str(args.dest / "ivf.faiss"))
    with np.load(args.source / "idmap.npz") as data:
        saved = {name: data[name] for name in data.files}
    saved["keys"] = saved["keys"] * args.factor
    np.savez(args.dest / "idmap.npz", **saved)
    if args.truth:
        np.save(args.dest.parent / "truth_p.npy", np.load(args.truth) * args.factor)
    print(f"{args.dest}: ids x{args.factor}, up to {int(saved['keys'][-1]):,}")


if __name__ == "__main__":
    main()
