"""The one commit path of ingest, whatever runner analysed the batch: screen, catalog
commit, index add, summary, periodic index save, progress.

Durability: each finished batch is committed to the catalog in one transaction, then its
vectors are added to the index; the index is saved every few seconds and at the end. After
a crash the engine reconciles the index with the catalog on open, and a rerun skips items
the catalog already holds, so nothing acknowledged is lost and nothing is duplicated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace

import numpy as np

from faceindex.catalog.base import Catalog, ImageOutcome
from faceindex.index.base import VectorIndex
from faceindex.pipeline.stages import is_refused
from faceindex.types import DetectedFace, IngestSummary

__all__ = [
    "SAVE_EVERY_S",
    "CommitGuard",
    "Committer",
    "FaceScreen",
    "ImageScreen",
    "Progress",
    "Progress_cb",
]

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
# Governance hook: held around each batch's screens, catalog commit and index add (the
# erasure lock), so an erasure completes wholly before or wholly after a batch's commit.
CommitGuard = Callable[[], AbstractContextManager[object]]


class Committer:
    """Commits finished batches into one catalog and index, adding up ``summary``. Called
    by the runners in the driving process only, one batch at a time."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        index: VectorIndex,
        model: str,
        summary: IngestSummary,
        total: int,
        progress: Progress_cb | None = None,
        screen: FaceScreen | None = None,
        image_screen: ImageScreen | None = None,
        guard: CommitGuard | None = None,
    ) -> None:
        self.catalog, self.index, self.model = catalog, index, model
        self.summary, self.total = summary, total
        self.progress, self.face_screen, self.image_screen = progress, screen, image_screen
        self.guard = guard
        self.started = self.last_save = time.perf_counter()

    def __call__(self, outcomes: list[ImageOutcome]) -> None:
        summary = self.summary
        for o in outcomes:
            if is_refused(o):  # never decoded; not recorded, so a lift lets it in later
                summary.images_skipped += 1
                summary.skipped.append((o.locator, o.error or ""))
        outcomes = [o for o in outcomes if not is_refused(o)]
        with self.guard() if self.guard is not None else nullcontext():
            outcomes = self.screened(outcomes)
            new = self.catalog.record(outcomes, self.model)
            if new:
                self.index.add(np.array([i for i, _ in new]), np.stack([v for _, v in new]))
        for o in outcomes:
            summary.faces_below_quality += o.below_floor
            if o.skipped:
                summary.skipped.append((o.locator, o.error or ""))
            elif o.error:
                summary.failed.append((o.locator, o.error))
            else:
                summary.images_new += 1
        summary.faces_indexed += len(new)
        if time.perf_counter() - self.last_save > SAVE_EVERY_S:
            self.index.save()
            self.last_save = time.perf_counter()
        if self.progress is not None:
            self.progress(
                Progress(
                    self.total,
                    summary.images_new + len(summary.failed) + len(summary.skipped),
                    summary.faces_indexed,
                    len(summary.failed),
                    time.perf_counter() - self.started,
                )
            )

    def screened(self, outcomes: list[ImageOutcome]) -> list[ImageOutcome]:
        """The ingest screens, in one place, before anything of a batch is committed:
        refused bytes (tombstones) first, then faces that match an opt-out."""
        if self.image_screen is not None:
            outcomes = _refused(outcomes, self.image_screen, self.summary)
        if self.face_screen is not None:
            outcomes = [_screened(o, self.face_screen, self.summary) for o in outcomes]
        return outcomes


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
