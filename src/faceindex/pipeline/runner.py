"""The local ingest runner: worker processes, batches, periodic durability, a summary.

Durability: each finished batch is committed to the catalog in one transaction, then its
vectors are added to the index; the index file is saved every few seconds and at the end.
After a crash the engine reconciles the index with the catalog on open, and a rerun skips
items the catalog already holds, so nothing acknowledged is lost and nothing is duplicated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace

import numpy as np

from faceindex.catalog.base import Catalog, ImageOutcome
from faceindex.config import Settings
from faceindex.index.base import VectorIndex
from faceindex.pipeline import worker
from faceindex.pipeline.pool import pool_context, run_pool
from faceindex.pipeline.stages import is_refused, skipped_outcome
from faceindex.sources.base import ImageSource, SourceItem
from faceindex.types import DetectedFace, IngestSummary
from faceindex.vision.analyze import FaceAnalyzer

__all__ = ["CommitGuard", "FaceScreen", "ImageScreen", "Progress", "pool_context", "run_ingest"]

log = logging.getLogger(__name__)

SAVE_EVERY_S = 5.0
SKIP_BATCH = 500  # skipped entries recorded per transaction


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
# Governance hook: held around each batch's screens, catalog commit and index add (the
# erasure lock), so an erasure completes wholly before or wholly after a batch's commit.
CommitGuard = Callable[[], AbstractContextManager[object]]


@dataclass(frozen=True)
class _Pending:
    todo: list[SourceItem]  # to read
    skip: list[SourceItem]  # to record as skipped, with why
    held: int  # already recorded, unchanged
    changed: int  # recorded before with another size or mtime: their old image may be unheld


def _pending(catalog: Catalog, source: ImageSource, source_id: int) -> _Pending:
    seen = catalog.seen_items(source_id)
    todo: list[SourceItem] = []
    skip: list[SourceItem] = []
    held = changed = 0
    for item in source.items():
        before = seen.get(item.locator)
        if before == (item.size, item.mtime):
            held += 1
            continue
        changed += before is not None
        (todo if item.skip is None else skip).append(item)
    return _Pending(todo, skip, held, changed)


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
    guard: CommitGuard | None = None,
    refuse: Mapping[str, str] | None = None,
) -> IngestSummary:
    """Ingest every new or changed item of one source. ``state`` runs in-process (tests,
    one worker); otherwise ``settings.effective_workers()`` processes share the work.
    ``refuse`` (sha256 -> why) is checked by the workers right after hashing, before any
    decode; ``image_screen`` re-checks every batch at commit (it sees later erasures)."""
    started = time.perf_counter()
    pending = _pending(catalog, source, source_id)
    todo, skip = pending.todo, pending.skip
    summary = IngestSummary(
        images_seen=len(todo) + len(skip) + pending.held, images_skipped=pending.held
    )
    last_save = time.perf_counter()

    def commit(outcomes: list[ImageOutcome]) -> None:
        nonlocal last_save
        for o in outcomes:
            if is_refused(o):  # never decoded; not recorded, so a lift lets it in later
                summary.images_skipped += 1
                summary.skipped.append((o.locator, o.error or ""))
        outcomes = [o for o in outcomes if not is_refused(o)]
        with guard() if guard is not None else nullcontext():
            if image_screen is not None:
                outcomes = _refused(outcomes, image_screen, summary)
            if screen is not None:
                outcomes = [_screened(o, screen, summary) for o in outcomes]
            new = catalog.record(outcomes, model)
            if new:
                index.add(np.array([i for i, _ in new]), np.stack([v for _, v in new]))
        for o in outcomes:
            summary.faces_below_quality += o.below_floor
            if o.skipped:
                summary.skipped.append((o.locator, o.error or ""))
            elif o.error:
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
                    len(todo) + len(skip),
                    summary.images_new + len(summary.failed) + len(summary.skipped),
                    summary.faces_indexed,
                    len(summary.failed),
                    time.perf_counter() - started,
                )
            )

    for batch in _batches(skip, SKIP_BATCH):  # nothing to read: recorded here, with why
        commit([skipped_outcome(source_id, item) for item in batch])
    workers = settings.effective_workers()
    batch_size = max(1, min(settings.batch_size, len(todo) // max(workers * 2, 1) or 1))
    if state is not None or workers == 1 or len(todo) <= batch_size:
        local = state or worker.WorkerState(settings, _analyzer(settings))
        if refuse is not None:
            local = replace(local, refuse=refuse)
        for batch in _batches(todo, batch_size):
            commit(worker.run_batch(local, source, source_id, batch))
    else:
        batches = _batches(todo, batch_size)
        run_pool(settings, workers, source, source_id, batches, commit, refuse=refuse)
    index.save()
    if pending.changed:  # a file replaced in place moved its location to the new bytes
        summary.images_unheld = len(catalog.unheld_images())
    summary.seconds = time.perf_counter() - started
    return summary


def _analyzer(settings: Settings) -> FaceAnalyzer:
    from faceindex.vision.factory import build_analyzer

    return build_analyzer(settings)


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
