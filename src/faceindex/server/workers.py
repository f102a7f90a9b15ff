"""Face analysis in worker processes, so the server's event loop never waits on dlib.

dlib's CNN detector and descriptor hold the GIL for the whole call (a 35 s fallback held
``/v1/health`` 35 s in the thread-pool design; docs/BENCHMARKS.md). Each
:class:`AnalysisWorker` is one child process with its own face models, loaded once, fed one
request at a time over a pipe: the probe's bytes go in, its faces (boxes, landmarks,
descriptors, thumbnails) come back, and the parent searches its own index and catalog, so
those stay in one process. A call that passes its deadline kills the child (the work is
cancelled, not left running) and a fresh one starts in its place; so does a child whose
resident memory has grown past ``max_rss_mb``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from faceindex.config import Settings
from faceindex.errors import FaceIndexError, ImageError
from faceindex.server.concurrency import TimedOut
from faceindex.vision.analyze import ImageBoxes, ImageFaces

__all__ = ["AnalysisWorker", "RemoteAnalyzer"]

log = logging.getLogger(__name__)


class AnalysisWorker:
    """One child process with face models. Not thread-safe: one caller at a time (the
    server lends each worker with one engine view)."""

    def __init__(self, settings: Settings, *, max_rss_mb: int) -> None:
        self.settings = settings
        self.max_rss_mb = max_rss_mb
        self._proc: Any = None  # multiprocessing's process type depends on the context
        self._conn: Connection | None = None
        self._ready = False  # the child has said its models are loaded
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the child if it is not running (it loads its models in the background)."""
        with self._lock:
            if self._proc is not None and self._proc.is_alive():
                return
            from faceindex.pipeline.runner import pool_context

            ctx = pool_context()
            parent, child = ctx.Pipe()
            proc = ctx.Process(  # type: ignore[attr-defined]
                target=_serve, args=(child, self.settings), name="faceindex-analysis", daemon=True
            )
            proc.start()
            child.close()
            self._proc, self._conn, self._ready = proc, parent, False

    def stop(self) -> None:
        """Kill the child at once (its work is abandoned) and reap it."""
        with self._lock:
            proc, conn = self._proc, self._conn
            self._proc = self._conn = None
        if conn is not None:
            conn.close()
        if proc is not None:
            proc.kill()
            proc.join(timeout=10)

    def call(self, op: str, data: bytes, deadline: float, **kwargs: Any) -> Any:
        """``op`` (a method of FaceAnalyzer) on ``data`` in the child, by ``deadline``
        (time.monotonic). Raises what the analysis raised, or TimedOut."""
        self.start()
        conn = self._conn
        assert conn is not None  # set by start()
        try:
            if not self._ready:
                # Still loading its models: wait, but a request timing out here leaves the
                # worker be (killing it would only start the loading over).
                if not conn.poll(max(0.0, deadline - time.monotonic())):
                    raise TimedOut("the face analysis worker is still starting; retry shortly")
                status, value = conn.recv()
                self._ready = True
                if status == "error":
                    cls, message = value
                    raise _rebuilt(cls, message)
            conn.send((op, data, kwargs))
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                self._restart("passed its deadline")
                raise TimedOut("the face analysis did not finish before the request deadline")
            status, value = conn.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            self._restart(f"died ({exc!r})")
            raise ImageError("the face analysis failed: its worker process stopped") from exc
        self._check_memory()
        if status == "error":
            cls, message = value
            raise _rebuilt(cls, message)
        return value

    def _restart(self, why: str) -> None:
        log.warning("analysis worker %s %s: restarting it", self.pid, why)
        self.stop()
        self.start()

    def _check_memory(self) -> None:
        rss = _rss_mib(self.pid)
        if rss is not None and rss > self.max_rss_mb:
            self._restart(f"holds {rss:.0f} MiB, over {self.max_rss_mb} MiB")


class RemoteAnalyzer:
    """The :class:`~faceindex.vision.analyze.Analyzer` of an engine view in the server: its
    calls run in ``worker`` and must finish by ``deadline`` (set per request)."""

    def __init__(self, worker: AnalysisWorker) -> None:
        self.worker = worker
        self.deadline = float("inf")

    def analyze_image(self, data: bytes, *, max_pixels: int, max_bytes: int) -> ImageFaces:
        result = self._call("analyze_image", data, max_pixels, max_bytes)
        assert isinstance(result, ImageFaces)  # the child's FaceAnalyzer answered
        return result

    def detect_image(self, data: bytes, *, max_pixels: int, max_bytes: int) -> ImageBoxes:
        result = self._call("detect_image", data, max_pixels, max_bytes)
        assert isinstance(result, ImageBoxes)
        return result

    def _call(self, op: str, data: bytes, max_pixels: int, max_bytes: int) -> object:
        deadline = min(self.deadline, time.monotonic() + 24 * 3600)
        return self.worker.call(op, data, deadline, max_pixels=max_pixels, max_bytes=max_bytes)


def _serve(conn: Connection, settings: Settings) -> None:
    """The child: build the models once, then answer requests until the pipe closes."""
    # One BLAS thread: the server runs one analysis per worker, one worker per engine slot.
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["OMP_NUM_THREADS"] = "1"
    # Below the HTTP process: on a small box an analysis using every core would otherwise
    # delay /v1/health and every other request by whole scheduler slices.
    with contextlib.suppress(OSError):
        os.nice(5)
    from faceindex.vision.factory import build_analyzer

    analyzer: Any = None
    failure: tuple[type[BaseException], str] | None = None
    try:
        # Every core for ONNX Runtime's intra-op threads (the embedder, the CNN pass): one
        # probe on an otherwise idle server gets the whole machine; probes at once share it
        # (ORT's threads do not spin, so oversubscribed ones only wait their turn).
        analyzer = build_analyzer(settings, threads=os.cpu_count() or 1)
    except FaceIndexError as exc:  # a missing or altered model: every answer says so
        failure = (type(exc), str(exc))
    conn.send(("error", failure) if failure else ("ready", None))
    while True:
        try:
            op, data, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        if failure is not None:
            conn.send(("error", failure))
            continue
        try:
            reply: tuple[str, object] = ("ok", getattr(analyzer, op)(data, **kwargs))
        except FaceIndexError as exc:
            reply = ("error", (type(exc), str(exc)))
        except (MemoryError, RuntimeError, ValueError) as exc:  # dlib raises RuntimeError
            reply = ("error", (ImageError, f"analysis failed: {type(exc).__name__}: {exc}"))
        conn.send(reply)
        del data, reply
        _release_freed_memory()


def _rebuilt(cls: type[BaseException], message: str) -> BaseException:
    try:
        return cls(message)
    except TypeError:  # an exception whose constructor takes more than a message
        return ImageError(message)


def _release_freed_memory() -> None:
    """Hand the freed heap back to the system: glibc keeps a big analysis's arenas."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _rss_mib(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
