"""How well does the perceptual hash link copies of one photo, and only those? (issue 10)

    PYTHONPATH=src .venv/bin/python benchmarks/photo_groups.py [--faces ../shared/faces]

Every image file under ``--faces`` is decoded as ingest decodes it (distinct bytes only: two
identical files are one image already, by sha256) and hashed. For each threshold:

* false links: pairs of distinct files whose hashes lie within it (different photos an
  ingest could link), the files involved, and the groups that would merge: connected
  components of the false-link graph holding more than one file (an upper bound: ingest
  links a new image to its nearest group only, it never merges two);
* recall on generated variants of every file: JPEG re-encoding (q30, 50, 70, 95), resizing
  (0.25x, 0.5x, 0.75x, 1.5x, 2x, each saved as JPEG q90), a 5% crop (2.5% off each side, and
  5% off the right and bottom), greyscale, and the issue's case (q60, then a 3/4 resize):
  the share of variants within the threshold of their original.

The shipped DCT hash is compared with a 64-bit difference hash (dHash, 9x8 grey, left-right
gradient signs) measured the same way. Files longer than ``--max-side`` pixels are first
reduced to it (the reduced copy is the original the variants are made from: it keeps the
run to minutes; 0 keeps every file as it is). Recall per folder is printed at the shipped
threshold. Prints tables; ``--json`` writes them.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from faceindex.vision.decode import decode_image
from faceindex.vision.phash import NEAR_BITS, perceptual_hash

EXTS = {".jpg", ".jpeg", ".png", ".pgm", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
LIMITS = {"max_pixels": 60_000_000, "max_bytes": 64 << 20}
THRESHOLDS = (4, 6, 8, 10, 12, 14, 16)
Hasher = Callable[[np.ndarray], int]


def dhash(rgb: np.ndarray) -> int:
    grey = Image.fromarray(rgb).convert("L").resize((9, 8), Image.Resampling.BOX)
    a = np.asarray(grey, dtype=np.int16)
    bits = (a[:, 1:] > a[:, :-1]).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


# (hash, its bits)
HASHES: dict[str, tuple[Hasher, int]] = {
    "dct64 (shipped)": (perceptual_hash, 64),
    "dhash64": (dhash, 64),
}


def _jpeg(img: Image.Image, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality)
    return decode_image(buf.getvalue(), **LIMITS)


def _resize(img: Image.Image, f: float) -> np.ndarray:
    w, h = img.size
    return _jpeg(img.resize((max(1, round(w * f)), max(1, round(h * f))), Image.LANCZOS), 90)


def _crop(img: Image.Image, centre: bool) -> np.ndarray:
    w, h = img.size
    if centre:
        box = (round(w * 0.025), round(h * 0.025), w - round(w * 0.025), h - round(h * 0.025))
    else:
        box = (0, 0, w - round(w * 0.05), h - round(h * 0.05))
    return _jpeg(img.crop(box), 90)


def _issue(img: Image.Image) -> np.ndarray:
    q60 = Image.fromarray(_jpeg(img, 60))
    return _resize(q60, 0.75)


VARIANTS: dict[str, Callable[[Image.Image], np.ndarray]] = {
    **{f"jpeg q{q}": (lambda img, q=q: _jpeg(img, q)) for q in (30, 50, 70, 95)},
    **{f"resize {f}x": (lambda img, f=f: _resize(img, f)) for f in (0.25, 0.5, 0.75, 1.5, 2.0)},
    "crop 5% centre": lambda img: _crop(img, True),
    "crop 5% corner": lambda img: _crop(img, False),
    "greyscale": lambda img: _jpeg(img.convert("L"), 90),
    "q60 then 3/4 resize": _issue,
}


def measure(
    root: Path, max_side: int
) -> tuple[list[str], dict[str, list[int]], dict[str, dict[str, list[int]]]]:
    """(file names, hash -> base hash per file, hash -> variant -> distance per file), one
    file in memory at a time."""
    names: list[str] = []
    base: dict[str, list[int]] = {h: [] for h in HASHES}
    dist: dict[str, dict[str, list[int]]] = {h: {v: [] for v in VARIANTS} for h in HASHES}
    seen: set[str] = set()
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in EXTS or not path.is_file():
            continue
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if sha in seen:
            continue
        try:
            rgb = decode_image(data, **LIMITS)
        except Exception:  # a file the decoder refuses is no image of the set
            continue
        seen.add(sha)
        names.append(str(path.relative_to(root)))
        img = Image.fromarray(rgb)
        if max_side and max(img.size) > max_side:
            img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            rgb = np.asarray(img)
        made = {v: make(img) for v, make in VARIANTS.items()}
        for h, (hasher, _) in HASHES.items():
            b = hasher(rgb)
            base[h].append(b)
            for v, x in made.items():
                dist[h][v].append(bin(hasher(x) ^ b).count("1"))
    return names, base, dist


def bit_matrix(hashes: list[int], bits: int) -> np.ndarray:
    raw = b"".join(h.to_bytes(bits // 8, "big") for h in hashes)
    return np.unpackbits(np.frombuffer(raw, dtype=np.uint8)).reshape(len(hashes), bits)


def false_links(m: np.ndarray, t: int) -> tuple[list[tuple[int, int, int]], int, int]:
    """(pairs within t as (i, j, bits), files in such pairs, merged groups)."""
    pairs: list[tuple[int, int, int]] = []
    for i in range(len(m) - 1):
        d = (m[i] != m[i + 1 :]).sum(1)
        for j in np.nonzero(d <= t)[0]:
            pairs.append((i, i + 1 + int(j), int(d[j])))
    parent = list(range(len(m)))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j, _ in pairs:
        parent[find(i)] = find(j)
    involved = {i for p in pairs for i in p[:2]}
    return pairs, len(involved), len({find(i) for i in involved})


def lookup_speed(n: int, queries: int = 500) -> dict[str, float]:
    """Near-hash lookups in a SQLite catalog of ``n`` hashed images (uniform random hashes:
    real ones cluster more, so buckets are fuller), through the band indexes."""
    import random
    import tempfile

    from faceindex.catalog.sqlite import SqliteCatalog
    from faceindex.vision.phash import bands, to_signed

    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        cat = SqliteCatalog(Path(tmp) / "catalog.db")
        stored = [rng.getrandbits(64) for _ in range(n)]
        t0 = time.perf_counter()
        with cat.transaction() as tx:
            for i, h in enumerate(stored, 1):
                tx.execute("INSERT INTO photo_groups (id, created_at) VALUES (?, '')", (i,))
                tx.execute(
                    "INSERT INTO images (sha256, width, height, created_at, phash, phash_b0,"
                    " phash_b1, phash_b2, phash_b3, group_id) VALUES (?,1,1,'',?,?,?,?,?,?)",
                    (f"{i:064x}", to_signed(h), *bands(h), i),
                )
        fill = time.perf_counter() - t0
        probes = [stored[rng.randrange(n)] ^ (1 << rng.randrange(64)) for _ in range(queries)]
        t1 = time.perf_counter()
        found = sum(len(cat.near_images(h)) for h in probes)
        per = (time.perf_counter() - t1) / queries
        cat.close()
    return {
        "images": n,
        "fill_s": fill,
        "lookup_ms": 1000 * per,
        "found_per_lookup": found / queries,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--faces", type=Path, default=Path("../shared/faces"))
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--show", type=int, default=6, help="closest distinct pairs to list")
    ap.add_argument("--max-side", type=int, default=1600, help="reduce larger files first")
    ap.add_argument(
        "--lookup-images", type=int, default=0, help="only time lookups among this many"
    )
    args = ap.parse_args()
    if args.lookup_images:
        speed = lookup_speed(args.lookup_images)
        print(
            f"{speed['images']} hashed images (filled in {speed['fill_s']:.1f} s): "
            f"{speed['lookup_ms']:.2f} ms per near-hash lookup, "
            f"{speed['found_per_lookup']:.2f} found within {NEAR_BITS} bits"
        )
        return
    t0 = time.perf_counter()
    names, base, dist = measure(args.faces, args.max_side)
    folders = [n.split("/")[0] for n in names]
    total_pairs = len(names) * (len(names) - 1) // 2
    print(
        f"{len(names)} distinct image files under {args.faces} ({time.perf_counter() - t0:.0f} s)"
    )
    report: dict[str, object] = {"files": len(names), "near_bits": NEAR_BITS, "hashes": {}}
    for label, (hasher, bits) in HASHES.items():
        t1 = time.perf_counter()
        for rgb_name in names[:50]:
            hasher(decode_image((args.faces / rgb_name).read_bytes(), **LIMITS))
        ms = 1000 * (time.perf_counter() - t1) / min(len(names), 50)
        m = bit_matrix(base[label], bits)
        d = {v: np.asarray(x) for v, x in dist[label].items()}
        rows = []
        print(f"\n{label}: {ms:.1f} ms per image (decode + hash)")
        print("  t    pairs  files groups  recall(all) " + " ".join(f"{v[:12]:>12}" for v in d))
        for t in (x * bits // 64 for x in THRESHOLDS):
            pairs, files, groups = false_links(m, t)
            recall = {v: float((a <= t).mean()) for v, a in d.items()}
            by_folder: dict[str, int] = {}
            for i, j, _ in pairs:
                key = folders[i] if folders[i] == folders[j] else f"{folders[i]}|{folders[j]}"
                by_folder[key] = by_folder.get(key, 0) + 1
            row = {
                "threshold": t,
                "false_link_pairs": len(pairs),
                "false_link_rate": len(pairs) / max(total_pairs, 1),
                "files_linked": files,
                "groups_merged": groups,
                "pairs_by_folder": by_folder,
                "recall": recall,
                "recall_all": float(np.mean([(a <= t).mean() for a in d.values()])),
            }
            rows.append(row)
            print(
                f"  {t:<4} {len(pairs):>5} {files:>6} {groups:>6}  {row['recall_all']:>10.4f}  "
                + " ".join(f"{recall[v]:>12.4f}" for v in d)
            )
            print(f"       false-link pairs by folder: {by_folder}")
        pairs, _, _ = false_links(m, bits // 4)
        for i, j, dd in sorted(pairs, key=lambda p: p[2])[: args.show]:
            print(f"    {dd:>3} bits: {names[i]}  ~  {names[j]}")
        per_folder: dict[str, dict[str, float]] = {}
        f_arr = np.asarray(folders)
        print(f"  recall per folder at the shipped threshold ({NEAR_BITS} bits):")
        for f in sorted(set(folders)):
            sel = f_arr == f
            per_folder[f] = {v: float((a[sel] <= NEAR_BITS).mean()) for v, a in d.items()}
            print(
                f"    {f[:18]:<18} ({int(sel.sum()):>3}) "
                + " ".join(f"{per_folder[f][v]:>12.4f}" for v in d)
            )
        worst = {v: int(a.max()) for v, a in d.items()}
        print("  worst variant distance: " + ", ".join(f"{v} {w}" for v, w in worst.items()))
        assert isinstance(report["hashes"], dict)
        report["hashes"][label] = {
            "bits": bits,
            "ms_per_image": ms,
            "rows": rows,
            "worst": worst,
            "recall_per_folder": per_folder,
        }
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
