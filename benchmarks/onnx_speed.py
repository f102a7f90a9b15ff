"""dlib's networks on ONNX Runtime against dlib itself, measured in one run.

    .venv/bin/python benchmarks/onnx_speed.py [--bin-python /tmp/dlib-bin/bin/python]
        [--threads N] [--repeat 5] [--tasks desc1,desc32,cnn480p,cnn1080p,cnnnoface]

Figures: descriptor ms/face at batch 1 and batch 32 (the raw network, no mirror); the MMOD
CNN detector's ms per image at 480p (640x480) and 1080p (1920x1080) with no upsampling (the
network over dlib's tiled pyramid, decoding included); and a 1600x1200 photo with no face,
upsampled once (the CNN fallback's worst case; ORT only unless --dlib-noface). Each figure
comes with the peak memory of the process that ran it.

Sides: ``ort`` (faceindex's converted graphs); ``dlib``, the dlib this interpreter imports
(the source build with OpenBLAS under `make install`); with ``--bin-python``, ``dlib-bin``,
an interpreter whose venv holds the dlib-bin wheel, numpy and pillow (`make bench-deps`
builds one as .venv-peer). Every side runs in its own subprocess with the same thread
budget: ORT intra-op threads, or OpenBLAS/OpenMP threads for dlib. The CPU model, core
count and load average are printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
SIZES = {"480p": (480, 640), "1080p": (1080, 1920)}


def _ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm up (and, for ORT, let the arena settle)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- one side, in its own process ---------------------------------------------------------


def run_side(side: str, task: str, data: Path, threads: int, repeat: int) -> dict[str, object]:
    chips = list(np.load(data / "chips.npy"))
    models = json.loads((data / "models.json").read_text())
    if task.startswith("desc"):
        batch = 1 if task == "desc1" else 32
        faces = (chips * 32)[:batch]
        if side == "ort":
            from faceindex.vision.onnx.embedder import OnnxDlibEmbedder

            emb = OnnxDlibEmbedder(mirror=False, threads=threads, cache_dir=Path(models["cache"]))
            fn: Callable[[], object] = lambda: emb.embed(faces)  # noqa: E731
        else:
            import dlib

            net = dlib.face_recognition_model_v1(models["resnet"])
            fn = (
                (lambda: net.compute_face_descriptor(faces[0]))
                if batch == 1
                else (lambda: net.compute_face_descriptor(faces))
            )
        ms = _ms(fn, repeat if batch == 1 else max(2, repeat // 2)) / batch
        return {"ms": ms, "peak_mb": _peak_mb()}
    img = np.load(data / f"{task[3:]}.npy")
    up = 1 if task == "cnnnoface" else 0
    if side == "ort":
        from faceindex.vision.onnx.detector import OnnxCnnDetector

        det = OnnxCnnDetector(
            upsample=up, max_side=0, threads=threads, cache_dir=Path(models["cache"])
        )
        fn = lambda: det.find(img)  # noqa: E731
        count = lambda: len(det.find(img))  # noqa: E731
    else:
        import dlib

        cnn = dlib.cnn_face_detection_model_v1(models["cnn"])
        fn = lambda: cnn(img, up)  # noqa: E731
        count = lambda: len(cnn(img, up))  # noqa: E731
    ms = _ms(fn, max(1, repeat // 2))
    return {"ms": ms, "faces": count(), "peak_mb": _peak_mb()}


# -- the orchestration --------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def prepare(data: Path) -> dict[str, str]:
    """A real chip (scikit-image's astronaut), the two test images, the model paths."""
    import dlib
    from PIL import Image
    from skimage import data as skdata

    from faceindex.vision.models import DLIB_CNN, DLIB_LANDMARKS_5, DLIB_RESNET, model_path

    rgb = np.asarray(skdata.astronaut())
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(model_path(DLIB_LANDMARKS_5)))
    rect = max(detector(rgb, 1), key=lambda r: r.area())
    chip = dlib.get_face_chip(rgb, predictor(rgb, rect), size=150, padding=0.25)
    np.save(data / "chips.npy", np.stack([chip, np.ascontiguousarray(chip[:, ::-1])]))
    for name, (h, w) in SIZES.items():  # the astronaut's face, scaled to fill the frame height
        side = h
        face = np.asarray(Image.fromarray(rgb).resize((side, side), Image.Resampling.BILINEAR))
        frame = np.full((h, w, 3), 96, dtype=np.uint8)
        frame[:, (w - side) // 2 : (w - side) // 2 + side] = face
        np.save(data / f"{name}.npy", frame)
    # a 1600x1200 photo with no face (smooth noise), as the CNN fallback meets one
    noise = np.random.default_rng(0).integers(0, 256, size=(150, 200, 3), dtype=np.uint8)
    blank = Image.fromarray(noise).resize((1600, 1200), Image.Resampling.BICUBIC)
    np.save(data / "noface.npy", np.asarray(blank))
    models = {
        "resnet": str(model_path(DLIB_RESNET)),
        "cnn": str(model_path(DLIB_CNN)),
        "cache": str(data / "onnx-cache"),
    }
    (data / "models.json").write_text(json.dumps(models))
    return models


def spawn(python: str, side: str, task: str, data: Path, threads: int, repeat: int) -> dict:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONPATH"] = str(HERE.parent.parent / "src") + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [python, str(HERE), "--side", side, "--task", task, "--data", str(data)]
    cmd += ["--threads", str(threads), "--repeat", str(repeat)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def side_label(python: str, side: str) -> str:
    if side == "ort":
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__} (CPU provider)"
    code = "import dlib; print(dlib.__version__, getattr(dlib, 'DLIB_USE_BLAS', '?'))"
    version, blas = subprocess.run(
        [python, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    return f"dlib {version} (BLAS: {blas})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bin-python", help="an interpreter whose venv has the dlib-bin wheel")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--tasks", default="desc1,desc32,cnn480p,cnn1080p,cnnnoface")
    ap.add_argument(
        "--dlib-noface",
        action="store_true",
        help="run dlib on the no-face photo too (tens of seconds and ~8 GB each)",
    )
    ap.add_argument("--side", help=argparse.SUPPRESS)
    ap.add_argument("--task", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        print(json.dumps(run_side(args.side, args.task, args.data, args.threads, args.repeat)))
        return

    sides = [("ort", sys.executable), ("dlib", sys.executable)]
    if args.bin_python:
        sides.append(("dlib-bin", args.bin_python))
    tasks = args.tasks.split(",")
    with tempfile.TemporaryDirectory(prefix="fi-onnx-speed-") as tmp:
        data = Path(tmp)
        prepare(data)
        spawn(sys.executable, "ort", "desc1", data, 1, 1)  # convert once, outside the timings
        spawn(sys.executable, "ort", "cnn480p", data, 1, 1)
        print(f"CPU: {cpu_model()}; {os.cpu_count()} cores; load average {os.getloadavg()}")
        print(f"threads per side: {args.threads} (ORT intra-op; OpenBLAS/OpenMP for dlib)")
        for side, python in sides:
            print(f"{side:9} = {side_label(python, side)}")
        names = {
            "desc1": "descriptor ms/face, batch 1",
            "desc32": "descriptor ms/face, batch 32",
            "cnn480p": "CNN detector ms, 640x480",
            "cnn1080p": "CNN detector ms, 1920x1080",
            "cnnnoface": "CNN u1 ms, 1600x1200 no face",
        }
        for task in tasks:
            for side, python in sides:
                if task == "cnnnoface" and side != "ort" and not args.dlib_noface:
                    continue
                got = spawn(python, side, task, data, args.threads, args.repeat)
                extra = f"  faces {got['faces']}" if "faces" in got else ""
                print(
                    f"{names[task]:30} {side:9} {got['ms']:9.1f}"
                    f"  peak {got['peak_mb']:6.0f} MB{extra}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
