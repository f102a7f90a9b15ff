"""What keeps the server's event loop from answering /v1/health while searches run.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/health_lag.py --stall-ms 30

Issue 9, item 5 wants ``/v1/health`` under 100 ms while searches run. The app
(``create_app(..., warm=True)``, as ``faceindex serve`` builds it) runs under uvicorn on
127.0.0.1 in this process, with two watchers:

* a task on the event loop that sleeps 5 ms and records how late it wakes (the loop's lag:
  how long any request, health included, would wait to be picked up);
* a thread that, whenever the loop has not ticked for ``--stall-ms``, records the loop
  thread's Python stack (what it was running) and, from ``/proc/self/task/TID/schedstat``,
  how much of that time the loop thread spent runnable but waiting for a CPU (the
  machine's fault, not the code's).

A client in a subprocess (the gallery and photos of benchmarks/probe_latency.py) posts the
in-the-wild photos (``--only``: those whose path holds that text; ``--limit``: the first
N) to /v1/searches while another thread of it polls /v1/health every 50 ms. Prints the
health and lag percentiles and every stall with its stack, the other threads' innermost
frames, and the loop thread's CPU wait.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from probe_latency import FACES, build_home, poll_health, wild_photos  # noqa: E402


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run_wait_ns(tid: int) -> int:
    """Nanoseconds thread ``tid`` of this process has waited runnable for a CPU."""
    try:
        return int(Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


class LoopWatch:
    """The lag of the event loop it runs on, and what the loop thread did in each stall."""

    def __init__(self, stall_ms: float) -> None:
        self.stall_s = stall_ms / 1000
        self.lags_ms: list[float] = []
        self.stalls: list[dict[str, Any]] = []
        self.stacks: dict[float, list[str]] = {}  # by the beat the stall followed
        self.beat = time.perf_counter()
        self._stop = threading.Event()

    async def tick(self) -> None:
        tid, ident = threading.get_native_id(), threading.get_ident()
        threading.Thread(target=self._watch, args=(ident,), daemon=True).start()
        waited = run_wait_ns(tid)
        while not self._stop.is_set():
            t0 = self.beat
            await asyncio.sleep(0.005)
            self.beat = time.perf_counter()
            lag = self.beat - t0 - 0.005
            self.lags_ms.append(1000 * lag)
            now = run_wait_ns(tid)
            if lag >= self.stall_s and now >= waited:
                self.stalls.append(
                    {
                        "at": t0,
                        "stall_ms": round(1000 * lag, 1),
                        "loop_thread_waiting_for_a_cpu_ms": round((now - waited) / 1e6, 1),
                    }
                )
            waited = now

    def _watch(self, ident: int) -> None:
        """Samples the loop thread's stack once per stall, while it lasts."""
        while not self._stop.wait(0.01):
            beat = self.beat
            if time.perf_counter() - beat < self.stall_s or beat in self.stacks:
                continue
            frames = sys._current_frames()
            me = threading.get_ident()
            stacks = {"loop": _stack(frames.get(ident), 5)}
            # The other threads' innermost frames: one of them may hold the GIL.
            for tid, frame in frames.items():
                if tid not in (ident, me):
                    stacks[f"thread {tid}"] = _stack(frame, 2)
            self.stacks[beat] = [
                f"{who}: {line}" for who, lines in stacks.items() for line in lines
            ]

    def report(self, spans: list[list[Any]]) -> list[dict[str, Any]]:
        """Each stall with its stack and the searches in flight (client's clock: the same
        CLOCK_MONOTONIC as this process's ``perf_counter``)."""
        out = []
        for s in self.stalls:
            at = s.pop("at")
            during = [n for n, t0, t1 in spans if t0 <= at + s["stall_ms"] / 1000 and t1 >= at]
            out.append(s | {"searches_in_flight": during, "stack": self.stacks.get(at, [])})
        return sorted(out, key=lambda s: -s["stall_ms"])

    def reset(self) -> None:
        self.lags_ms.clear()
        self.stalls.clear()
        self.stacks.clear()

    def stop(self) -> None:
        self._stop.set()


def _stack(frame: FrameType | None, depth: int) -> list[str]:
    lines = traceback.format_stack(frame)[-depth:] if frame else []
    return [line.strip().replace("\n", " | ") for line in lines]


def client(url: str, token: str, only: str, limit: int, out: Path) -> None:
    """The load: searches one after another, health polled every 50 ms meanwhile."""
    import httpx

    photos = [p for p in wild_photos() if only in str(p)][:limit]
    probes = [(str(p.relative_to(FACES)), p.read_bytes()) for p in photos]
    health_ms: list[float] = []
    spans: list[list[Any]] = []
    stop = threading.Event()

    with httpx.Client(base_url=url, timeout=120) as http:
        poller = threading.Thread(target=poll_health, args=(url, stop, health_ms))
        poller.start()
        for name, data in probes:
            t0 = time.perf_counter()
            http.post(
                "/v1/searches",
                headers={"Authorization": f"Bearer {token}"},
                files={"image": (Path(name).name, data, "application/octet-stream")},
                data={"case_reference": "BENCH-9", "purpose": "health lag benchmark"},
            )
            spans.append([name, t0, time.perf_counter()])
        stop.set()
        poller.join()
    out.write_text(json.dumps({"health_ms": health_ms, "spans": spans}))


async def serve(
    home: Path, port: int, token: str, only: str, limit: int, watch: LoopWatch
) -> dict[str, list[Any]]:
    import uvicorn

    from faceindex.config import Settings
    from faceindex.server.app import create_app

    app = create_app(Settings.load(home), warm=True)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    ticking = asyncio.create_task(watch.tick())
    url = f"http://127.0.0.1:{port}"
    while not server.started:
        await asyncio.sleep(0.05)
    await asyncio.sleep(8)  # the analysis workers load their models
    watch.reset()
    out = home.parent / "health.json"
    cmd = [sys.executable, __file__, "--client", url, token, only, str(limit), str(out)]
    proc = await asyncio.create_subprocess_exec(*cmd, env=os.environ.copy())
    await proc.wait()
    watch.stop()
    server.should_exit = True
    await serving
    await ticking
    return dict(json.loads(out.read_text()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=0, help="photos searched (the first N)")
    ap.add_argument("--only", default="", help="photos whose path holds this text only")
    ap.add_argument("--port", type=int, default=8767)
    ap.add_argument("--stall-ms", type=float, default=40.0, help="record stalls over this")
    ap.add_argument("--client", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        url, token, only, limit, out = args.client
        client(url, token, only, int(limit) or 10**6, Path(out))
        return
    root = Path(tempfile.mkdtemp(prefix="faceindex-health-lag-"))
    try:
        home, token = build_home(root)
        watch = LoopWatch(args.stall_ms)
        seen = asyncio.run(serve(home, args.port, token, args.only, args.limit, watch))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    health = seen["health_ms"]
    report = {
        "health_polls": len(health),
        "health_p50_p99_max_ms": [round(pct(health, q), 1) for q in (50, 99, 100)],
        "loop_lag_p50_p99_max_ms": [round(pct(watch.lags_ms, q), 1) for q in (50, 99, 100)],
        "stalls": watch.report(seen["spans"]),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
