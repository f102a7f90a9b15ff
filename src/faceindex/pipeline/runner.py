"""The local ingest runner: worker processes, batches, periodic durability, a summary.

Durability: each finished batch is committed to the catalog in one transaction, then its
vectors are added to the index; the index file is saved every few seconds and at the end.
After a crash the engine reconciles the index with the catalog on open, and a rerun skips
items the catalog already holds, so nothing acknowledged is lost and nothing is duplicated.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace

import numpy as np

from faceindex.catalog.base import Catalog, ImageOutcome
from faceindex.config import Settings
from faceindex.index.base import VectorIndex
from faceindex.pipeline import worker
from faceindex.sources.base import ImageSource, SourceItem
from faceindex.types import DetectedFace, IngestSummary
from faceindex.vision.analyze import FaceAnalyzer

__all__ = ["FaceScreen", "ImageScreen", "Progress", "run_ingest"]

log = logging.getLogger(__name__)

SAVE_EVERY_S = 5.0


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    faces: int
    failed: int
    elapsed: float


Progress_cb = Callable[[Progress], None]
# Governance hook: given a batch's faces, returns which to keep (opt-out suppression).
FaceScreen = Callable[[Sequence[DetectedFace]], list[bool]]
# Governance hook: given a batch's outcomes (sha256 known), locator -> why to refuse it
# (erased bytes now; perceptual near-duplicates once outcomes carry such a hash).
ImageScreen = Callable[[Sequence[ImageOutcome]], dict[str, str]]


def _pending(catalog: Catalog, source: ImageSource, source_id: int) -> tuple[list[SourceItem], int]:
    seen = catalog.seen_items(source_id)
    todo, skipped = [], 0
    for item in source.items():
        if item.locator in seen and seen[item.locator] == (item.size, item.mtime):
            skipped += 1
        else:
            todo.append(item)
    return todo, skipped


def _batches(items: list[SourceItem], size: int) -> Iterator[list[SourceItem]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_ingest(
    *,
    settings: Settings,
    catalog: Catalog,
    index: VectorIndex,
    source: ImageSource,
    source_id: int,
    model: str,
    progress: Progress_cb | None = None,
    screen: FaceScreen | None = None,
    image_screen: ImageScreen | None = None,
    state: worker.WorkerState | None = None,
) -> IngestSummary:
    """Ingest every new or changed item of one source. ``state`` runs in-process (tests,
    one worker); otherwise ``settings.effective_workers()`` processes share the work."""
    started = time.perf_counter()
    todo, skipped = _pending(catalog, source, source_id)
    summary = IngestSummary(images_seen=len(todo) + skipped, images_skipped=skipped)
    last_save = time.perf_counter()

    def commit(outcomes: list[ImageOutcome]) -> None:
        nonlocal last_save
        if image_screen is not None:
            outcomes = _refused(outcomes, image_screen, summary)
        if screen is not None:
            outcomes = [_screened(o, screen, summary) for o in outcomes]
        new = catalog.record(outcomes, model)
        if new:
            index.add(np.array([i for i, _ in new]), np.stack([v for _, v in new]))
        for o in outcomes:
            summary.faces_below_quality += o.below_floor
            if o.error:
                summary.failed.append((o.locator, o.error))
            else:
                summary.images_new += 1
        summary.faces_indexed += len(new)
        if time.perf_counter() - last_save > SAVE_EVERY_S:
            index.save()
            last_save = time.perf_counter()
        if progress is not None:
            progress(
                Progress(
                    len(todo),
                    summary.images_new + len(summary.failed) + len(summary.skipped),
                    summary.faces_indexed,
                    len(summary.failed),
                    time.perf_counter() - started,
                )
            )

    workers = settings.effective_workers()
    batch_size = max(1, min(settings.batch_size, len(todo) // max(workers * 2, 1) or 1))
    if state is not None or workers == 1 or len(todo) <= batch_size:
        local = state or worker.WorkerState(settings, _analyzer(settings))
        for batch in _batches(todo, batch_size):
            commit(worker.run_batch(local, source, source_id, batch))
    else:
        _run_pool(settings, workers, source, source_id, _batches(todo, batch_size), commit)
    index.save()
    summary.seconds = time.perf_counter() - started
    return summary


def _analyzer(settings: Settings) -> FaceAnalyzer:
    from faceindex.engine import build_analyzer

    return build_analyzer(settings)


def _run_pool(
    settings: Settings,
    workers: int,
    source: ImageSource,
    source_id: int,
    batches: Iterator[list[SourceItem]],
    commit: Callable[[list[ImageOutcome]], None],
) -> None:
    ctx = pool_context()
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=worker.init_worker,
        initargs=(settings, 1),
    ) as pool:
        in_flight: set[Future[list[ImageOutcome]]] = set()
        exhausted = False
        while in_flight or not exhausted:
            while not exhausted and len(in_flight) < workers * 2:
                batch = next(batches, None)
                if batch is None:
                    exhausted = True
                    break
                in_flight.add(pool.submit(worker.process_batch, source, source_id, batch))
            if not in_flight:
                break
            done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for fut in done:
                commit(fut.result())


def pool_context() -> mp.context.BaseContext:
    """forkserver: workers start from a clean process. Forking a parent that has run dlib,
    OpenBLAS or FAISS threads deadlocks the children (seen here with fork), and the HTTP
    server has threads of its own. Scripts must be importable (not piped on stdin)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["faceindex.pipeline.worker"])
    return ctx


def _screened(outcome: ImageOutcome, screen: FaceScreen, summary: IngestSummary) -> ImageOutcome:
    if not outcome.faces:
        return outcome
    keep = screen(outcome.faces)
    kept = tuple(f for f, k in zip(outcome.faces, keep, strict=True) if k)
    summary.faces_suppressed += len(outcome.faces) - len(kept)
    return replace(outcome, faces=kept)


def _refused(
    outcomes: list[ImageOutcome], screen: ImageScreen, summary: IngestSummary
) -> list[ImageOutcome]:
    """Drop items whose bytes the screen refuses; they are skipped, with the reason."""
    refused = screen(outcomes)
    if not refused:
        return outcomes
    kept = []
    for o in outcomes:
        why = refused.get(o.locator)
        if why is None:
            kept.append(o)
        else:
            summary.images_skipped += 1
            summary.skipped.append((o.locator, why))
    return kept
