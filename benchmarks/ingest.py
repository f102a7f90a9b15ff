"""Ingest throughput: faceindex (1 process and all cores) against the face_recognition
library on the same dlib models, same images, same run.

    .venv/bin/python benchmarks/ingest.py [--faces ../shared/faces] [--sets knn,deepface,...]

face_recognition (installed with --no-deps; `make bench-deps`) runs as its README shows:
load_image_file -> face_locations (HOG, upsample 1, full resolution) -> face_encodings.
faceindex runs its real ingest (catalog + index writes included) into a temporary home.
"Same faces" matches each face_recognition box to a faceindex box at IoU >= 0.5.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_FACES = HERE.parent.parent / "shared" / "faces"
SETS = {
    "knn": "face-recognition-knn",
    "deepface": "deepface-pairs/images",
    "multi": "multi-face",
    "yale": "yale-faces",
}
SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".pgm", ".bmp", ".webp"}


def collect(root: Path, names: list[str]) -> list[Path]:
    files: list[Path] = []
    for name in names:
        files += sorted(p for p in (root / SETS[name]).rglob("*") if p.suffix.lower() in SUFFIXES)
    return files


def peer(files: list[Path]) -> tuple[float, dict[str, list[tuple[int, int, int, int]]]]:
    try:  # face_recognition hides this failure behind "Please install" and a zero exit
        import face_recognition_models  # noqa: F401
    except ImportError as exc:
        sys.exit(
            f"face_recognition_models does not load under {sys.executable}: {exc}\n"
            "(it imports pkg_resources: `make bench-deps` keeps setuptools<81 for it)"
        )
    import face_recognition

    boxes: dict[str, list[tuple[int, int, int, int]]] = {}
    start = time.perf_counter()
    for f in files:
        img = face_recognition.load_image_file(str(f))
        locs = face_recognition.face_locations(img)
        face_recognition.face_encodings(img, locs)
        boxes[str(f)] = [(left, top, right, bottom) for top, right, bottom, left in locs]
    return time.perf_counter() - start, boxes


def peer_elsewhere(python: str, files: list[Path]) -> tuple[float, dict[str, list]]:
    """Run the peer under another interpreter (e.g. a venv with the dlib-bin wheel)."""
    import subprocess

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(str(f) for f in files))
    out = subprocess.run(
        [python, __file__, "--peer-only", fh.name], check=True, capture_output=True, text=True
    ).stdout
    os.unlink(fh.name)
    data = json.loads(out)
    return data["seconds"], {k: [tuple(b) for b in v] for k, v in data["boxes"].items()}


def ours(files: list[Path], workers: int, **overrides: object) -> tuple[float, dict[str, list]]:
    from faceindex.config import Settings
    from faceindex.engine import Engine

    tmp = Path(tempfile.mkdtemp(prefix="fi-bench-"))
    try:
        gallery = tmp / "gallery"
        gallery.mkdir()
        for i, f in enumerate(files):  # copies: the folder source follows no outside links
            shutil.copyfile(f, gallery / f"{i:05d}{f.suffix.lower()}")
        settings = Settings.load(tmp / "home", workers=workers, **overrides)
        with Engine.open(settings, create=True) as engine:
            engine.add_source(
                "bench", path=str(gallery), owner="bench", legal_basis="contract", retention_days=1
            )
            start = time.perf_counter()
            engine.ingest("bench")
            seconds = time.perf_counter() - start
            rows = engine.catalog.query(  # type: ignore[attr-defined]
                "SELECT it.locator, f.box_left, f.box_top, f.box_right, f.box_bottom"
                " FROM faces f JOIN items it ON it.image_id = f.image_id"
            )
        boxes: dict[str, list] = {str(f): [] for f in files}
        for r in rows:
            boxes[str(files[int(r[0].split(".")[0])])].append(tuple(r[1:5]))
        return seconds, boxes
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _iou(a: tuple, b: tuple) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def same_faces(ref: dict[str, list], got: dict[str, list]) -> tuple[int, int, int]:
    """(reference faces, of those found again, extra faces found)."""
    total = found = extra = 0
    for key, ref_boxes in ref.items():
        mine = list(got.get(key, []))
        total += len(ref_boxes)
        for rb in ref_boxes:
            best = max(mine, key=lambda b: _iou(rb, b), default=None)
            if best is not None and _iou(rb, best) >= 0.5:
                found += 1
                mine.remove(best)
        extra += len(mine)
    return total, found, extra


def machine() -> dict[str, object]:
    """What both sides run on: the CPU, its cores, and the thread settings that change speed
    (the same figures differ 1.6x between two CPUs of this box's kind without them)."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    env = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "MKL_NUM_THREADS")
    import dlib

    return {
        "cpu": model,
        "cores": os.cpu_count() or 1,
        "env": {k: os.environ.get(k, "") for k in env},
        "dlib": f"{dlib.__version__} blas={getattr(dlib, 'DLIB_USE_BLAS', '?')}",
    }


def threads_of(workers: int, overrides: dict[str, object]) -> str:
    """faceindex's threads: processes x ONNX Runtime intra-op threads each."""
    from faceindex.config import Settings
    from faceindex.vision.onnx.runtime import threads_per_worker

    s = Settings(home=Path(tempfile.gettempdir()), workers=workers, **overrides)  # type: ignore[arg-type]
    if s.embedder_runtime != "onnx":
        return f"{workers} processes, dlib descriptors"
    return f"{workers} processes x {threads_per_worker(workers, s.onnx_threads)} ORT threads"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--faces", type=Path, default=DEFAULT_FACES)
    ap.add_argument("--sets", default="knn,deepface,multi,yale")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument(
        "--peer-python",
        action="append",
        default=[],
        help="also time face_recognition under this interpreter (repeatable)",
    )
    ap.add_argument("--peer-only", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer_only:
        files = [Path(line) for line in args.peer_only.read_text().splitlines()]
        seconds, boxes = peer(files)
        print(json.dumps({"seconds": seconds, "boxes": boxes}))
        return
    if not (args.faces / "README.md").is_file():
        sys.exit(f"needs the labeled photos at {args.faces}")
    files = collect(args.faces, args.sets.split(","))
    cores = os.cpu_count() or 1
    print(f"{len(files)} images from {args.sets}; {cores} cores", flush=True)
    host = machine()
    print(f"cpu: {host['cpu']}; dlib {host['dlib']}; env {host['env']}", flush=True)
    print("face_recognition: 1 process, dlib's own threads (descriptors via dlib)", flush=True)

    peer_s, peer_boxes = peer(files)
    n_peer = sum(len(b) for b in peer_boxes.values())
    rows = [("face_recognition 1.3, same dlib (1 process)", peer_s, n_peer, None)]
    print(f"face_recognition: {peer_s:.1f}s, {n_peer} faces", flush=True)
    for python in args.peer_python:
        secs, boxes = peer_elsewhere(python, files)
        label = f"face_recognition under {Path(python).parent.parent.name}"
        rows.append(
            (label, secs, sum(len(b) for b in boxes.values()), same_faces(peer_boxes, boxes))
        )
        print(f"{label}: {secs:.1f}s", flush=True)
    configs = [
        ("faceindex, 1 process", 1, {}),
        (f"faceindex, {cores} processes", cores, {}),
        (
            f"faceindex, {cores} processes, no fallback/mirror",
            cores,
            {"detect_fallback": False, "mirror": False},
        ),
    ]
    results = {}
    for label, workers, over in configs:
        secs, boxes = ours(files, workers, **over)
        n = sum(len(b) for b in boxes.values())
        rows.append((label, secs, n, same_faces(peer_boxes, boxes)))
        print(f"{label}: {secs:.1f}s, {n} faces ({threads_of(workers, over)})", flush=True)
    print()
    print(f"{'run':48} {'img/s':>7} {'faces/s':>8} {'faces':>6} {'x peer':>7}  same faces")
    print("(x peer: against face_recognition on the same dlib; same faces: of its boxes)")
    for label, secs, n, same in rows:
        ratio = peer_s / secs
        same_txt = f"{same[1]}/{same[0]} found, {same[2]} extra" if same else "-"
        print(
            f"{label:48} {len(files) / secs:7.2f} {n / secs:8.2f} {n:6d} {ratio:7.2f}  {same_txt}"
        )
        results[label] = {"seconds": secs, "faces": n, "ratio": ratio, "same": same}
    if args.json:
        body = {"images": len(files), "machine": host, "runs": results}
        args.json.write_text(json.dumps(body, indent=2))


if __name__ == "__main__":
    main()
