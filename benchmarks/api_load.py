"""Concurrent photo searches over HTTP against a 1M-face gallery, and what happens past saturation.

    .venv/bin/python benchmarks/api_load.py --faces 1000000 --seconds 20

1. Builds a gallery in a temporary engine home (or --home): real catalog rows (one image, one
   item, one face each) with synthetic 128-d vectors, written through ``Catalog.record`` and
   ``VectorIndex.add`` in batches. Built once per home; a rerun reuses it.
2. Starts ``faceindex serve`` (uvicorn) on 127.0.0.1 in a subprocess, with one admin token.
3. For each concurrency level, clients POST a real photo (a face cropped from scikit-image's
   astronaut) to /v1/searches for --seconds: searches/s, p50/p99 latency, status counts.
   The dlib analysis of the probe (detect, align, embed) runs for every request; nothing
   precomputed crosses the API.
4. Overload: many more clients than engine slots + queue; counts 200/429/5xx and the
   server's resident memory before and after.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from faceindex.catalog.base import ImageOutcome
from faceindex.config import Settings
from faceindex.engine import Engine
from faceindex.types import BBox, DetectedFace, FaceQuality

BATCH = 20_000


def build_gallery(home: Path, n: int, seed: int = 1) -> float:
    """n synthetic faces through the real catalog and index; returns seconds taken."""
    started = time.perf_counter()
    photos = home.parent / "synthetic-photos"
    photos.mkdir(parents=True, exist_ok=True)
    with Engine.open(Settings.load(home), create=True) as engine:
        have = engine.catalog.count_faces()
        if have >= n:
            return 0.0
        try:
            source = engine.catalog.get_source("synthetic")
        except Exception:
            source = engine.add_source(
                "synthetic", path=str(photos), owner="bench", legal_basis="consent",
                retention_days=3650,
            )  # fmt: skip
        rng = np.random.default_rng(seed)
        quality = FaceQuality(size=100, sharpness=100.0, pose=0.0, score=0.9)
        box = BBox(10, 10, 110, 110)
        for start in range(have, n, BATCH):
            count = min(BATCH, n - start)
            # dlib descriptors: components around +-0.1, norms near 1 (spread is not the point
            # here: an exact index costs the same whatever the vectors are).
            vecs = (rng.standard_normal((count, 128)) * 0.09).astype(np.float32)
            outcomes = [
                ImageOutcome(
                    source_id=source.id,
                    locator=f"img/{start + i:07d}.jpg",
                    size=1000,
                    mtime=0.0,
                    sha256=hashlib.sha256(f"synthetic-{start + i}".encode()).hexdigest(),
                    width=200,
                    height=200,
                    faces=(DetectedFace(box, (), "synthetic", 1.0, quality, vecs[i], b""),),
                )
                for i in range(count)
            ]
            new = engine.catalog.record(outcomes, "synthetic")
            engine.index.add(np.array([i for i, _ in new]), np.stack([v for _, v in new]))
            print(f"  gallery: {start + count:,} faces", file=sys.stderr, flush=True)
        engine.index.save()
    return time.perf_counter() - started


def probe_photo() -> bytes:
    from PIL import Image
    from skimage import data

    face = np.asarray(data.astronaut())[20:230, 120:320]  # 200x210, one face
    buf = io.BytesIO()
    Image.fromarray(face).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load(url: str, token: str, photo: bytes, clients: int, seconds: float) -> dict[str, object]:
    import httpx

    deadline = time.monotonic() + seconds
    results: list[tuple[int, float]] = []
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                try:
                    r = http.post(
                        "/v1/searches",
                        headers={"Authorization": f"Bearer {token}"},
                        files={"image": ("probe.jpg", photo, "image/jpeg")},
                        data={"case_reference": "BENCH-1", "purpose": "load test", "top_k": "10"},
                    )
                    status = r.status_code
                    if status == 429:  # honour Retry-After as a polite client would, briefly
                        time.sleep(min(0.2, float(r.headers.get("retry-after", "1"))))
                except httpx.HTTPError:
                    status = -1
                with lock:
                    results.append((status, time.perf_counter() - t0))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ok = sorted(lat for s, lat in results if s == 200)
    codes: dict[str, int] = {}
    for s, _ in results:
        codes[str(s)] = codes.get(str(s), 0) + 1

    def pct(p: float) -> float:
        return round(1000 * ok[min(len(ok) - 1, int(p * len(ok)))], 1) if ok else float("nan")

    return {
        "clients": clients,
        "searches_per_s": round(len(ok) / wall, 2),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": round(1000 * statistics.fmean(ok), 1) if ok else float("nan"),
        "status": codes,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--faces", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--levels", default="1,2,3,4")
    ap.add_argument("--overload", type=int, default=32, help="clients in the overload phase")
    ap.add_argument("--threads", type=int, default=2, help="server_threads")
    ap.add_argument("--queue", type=int, default=2, help="server_queue")
    ap.add_argument("--home", type=Path, default=None)
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument(
        "--no-mirror",
        action="store_true",
        help="embed each probe once instead of averaging it with its mirror image",
    )
    args = ap.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="faceindex-api-load-")) / "home"
    print(f"building {args.faces:,} faces in {home}", file=sys.stderr)
    built = build_gallery(home, args.faces)
    (home / "config.toml").write_text(
        f"server_threads = {args.threads}\nserver_queue = {args.queue}\n"
        "rate_limit_per_minute = 1000000\nrate_limit_burst = 100000\n"
        + ("mirror = false\n" if args.no_mirror else "")
    )
    from faceindex.server.accounts import AccountStore

    store = AccountStore.for_home(home)
    token = store.add(f"bench-{os.getpid()}-{int(time.time())}", "admin")
    store.close()

    cmd = [sys.executable, "-c", "from faceindex.cli import main; main()", "serve",
           "--home", str(home), "--port", str(args.port), "--log-level", "warning"]  # fmt: skip
    server = subprocess.Popen(cmd)
    url = f"http://127.0.0.1:{args.port}"
    try:
        import httpx

        for _ in range(600):
            try:
                if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        photo = probe_photo()
        load(url, token, photo, args.threads, 5)  # warm up: load the face models per slot
        report: dict[str, object] = {
            "faces": httpx.get(url + "/v1/health").json()["faces"],
            "gallery_build_s": round(built, 1),
            "server_threads": args.threads,
            "server_queue": args.queue,
            "mirror": not args.no_mirror,
            "rss_mib_start": round(rss_mib(server.pid), 1),
            "levels": [],
        }
        for clients in (int(c) for c in args.levels.split(",")):
            row = load(url, token, photo, clients, args.seconds)
            report["levels"].append(row)  # type: ignore[attr-defined]
            print(json.dumps(row), file=sys.stderr, flush=True)
        report["overload"] = load(url, token, photo, args.overload, args.seconds)
        report["rss_mib_after_overload"] = round(rss_mib(server.pid), 1)
        print(json.dumps(report["overload"]), file=sys.stderr, flush=True)
        print(json.dumps(report, indent=2))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
