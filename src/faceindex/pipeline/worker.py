"""Ingest worker processes: each builds its own models once, then analyses batches."""

from __future__ import annotations

import os
from dataclasses import dataclass

from faceindex.catalog.base import ImageOutcome
from faceindex.config import Settings
from faceindex.pipeline.stages import process_item
from faceindex.sources.base import ImageSource, SourceItem
from faceindex.vision.analyze import FaceAnalyzer

__all__ = ["WorkerState", "current", "init_worker", "process_batch", "run_batch"]


@dataclass
class WorkerState:
    settings: Settings
    analyzer: FaceAnalyzer


# One per worker process, set by the pool initializer; the main process never touches it.
_state: WorkerState | None = None


def init_worker(settings: Settings, blas_threads: int) -> None:
    global _state
    # Must precede dlib's import: OpenBLAS reads it when the library loads. One BLAS thread
    # per process, because the processes already occupy every core.
    os.environ["OPENBLAS_NUM_THREADS"] = str(blas_threads)
    os.environ["OMP_NUM_THREADS"] = str(blas_threads)
    from faceindex.engine import build_analyzer

    _state = WorkerState(settings, build_analyzer(settings))


def current() -> WorkerState:
    """This worker process's models and settings (set by :func:`init_worker`)."""
    if _state is None:
        raise RuntimeError("worker not initialised")
    return _state


def process_batch(
    source: ImageSource, source_id: int, items: list[SourceItem]
) -> list[ImageOutcome]:
    return run_batch(current(), source, source_id, items)


def run_batch(
    state: WorkerState, source: ImageSource, source_id: int, items: list[SourceItem]
) -> list[ImageOutcome]:
    s = state.settings
    return [
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
        )
        for item in items
    ]
