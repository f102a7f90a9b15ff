"""Ingest worker processes: each builds its own models once, then analyses batches."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from faceindex.catalog.base import ImageOutcome
from faceindex.config import Settings
from faceindex.pipeline.stages import process_item
from faceindex.sources.base import ImageSource, SourceItem
from faceindex.vision.analyze import FaceAnalyzer

__all__ = ["WorkerState", "current", "init_worker", "process_batch", "ready", "run_batch"]


@dataclass
class WorkerState:
    settings: Settings
    analyzer: FaceAnalyzer
    refuse: Mapping[str, str] | None = None  # sha256 -> why: never decoded (erased bytes)


# One per worker process, set by the pool initializer; the main process never touches it.
_state: WorkerState | None = None


def init_worker(
    settings: Settings, blas_threads: int, refuse: Mapping[str, str] | None = None
) -> None:
    global _state
    # Must precede dlib's import: OpenBLAS reads it when the library loads. One BLAS thread
    # per process, because the processes already occupy every core.
    os.environ["OPENBLAS_NUM_THREADS"] = str(blas_threads)
    os.environ["OMP_NUM_THREADS"] = str(blas_threads)
    from faceindex.vision.factory import build_analyzer

    _state = WorkerState(settings, build_analyzer(settings, threads=blas_threads), refuse)


def current() -> WorkerState:
    """This worker process's models and settings (set by :func:`init_worker`)."""
    if _state is None:
        raise RuntimeError("worker not initialised")
    return _state


def ready() -> bool:
    """True once this worker's models are loaded (the pool's first call checks it)."""
    return _state is not None


def process_batch(
    source: ImageSource, source_id: int, items: list[SourceItem]
) -> list[ImageOutcome]:
    return run_batch(current(), source, source_id, items, hard_limit=True)


def run_batch(
    state: WorkerState,
    source: ImageSource,
    source_id: int,
    items: list[SourceItem],
    *,
    hard_limit: bool = False,
) -> list[ImageOutcome]:
    """Every item's outcome. ``hard_limit`` (worker processes only, never the caller's own
    process): an item that has used twice its time limit in CPU ends this process."""
    s = state.settings
    out = []
    for item in items:
        with _cpu_limit(2 * s.ingest_item_timeout_s if hard_limit else 0.0):
            out.append(
                process_item(
                    source,
                    source_id,
                    item,
                    state.analyzer,
                    max_pixels=s.max_pixels,
                    max_bytes=s.max_bytes,
                    quality_floor=s.quality_floor,
                    min_face_size=s.min_face_size,
                    detect_max_side=s.detect_max_side,
                    timeout_s=s.ingest_item_timeout_s,
                    refuse=state.refuse,
                )
            )
    return out


@contextmanager
def _cpu_limit(seconds: float) -> Iterator[None]:
    """The hard half of the per-item limit. The soft half (SIGALRM, pipeline/deadline.py)
    runs Python code, which cannot run while dlib or a decoder holds the interpreter in C;
    SIGPROF, left at its default action, lets the kernel end the process instead. The pool
    then retries the batch's items alone and records this one (pipeline/pool.py)."""
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return
    signal.signal(signal.SIGPROF, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
