"""Ingest one source: list what is new, let a runner analyse it, commit it, summarise.

The runner (:mod:`faceindex.pipeline.base`) is the caller's choice, else picked here: the
caller's process for one worker or a source smaller than one batch, else a local pool of
worker processes. Every runner commits through :class:`~faceindex.pipeline.commit.Committer`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace

from faceindex.catalog.base import Catalog
from faceindex.config import Settings
from faceindex.index.base import VectorIndex
from faceindex.pipeline import worker
from faceindex.pipeline.base import Runner
from faceindex.pipeline.commit import (
    CommitGuard,
    Committer,
    FaceScreen,
    ImageScreen,
    Progress,
    Progress_cb,
)
from faceindex.pipeline.local import InProcessRunner, PoolRunner
from faceindex.pipeline.plan import batches, pending, survey
from faceindex.pipeline.pool import pool_context
from faceindex.pipeline.stages import skipped_outcome
from faceindex.sources.base import ImageSource
from faceindex.types import IngestSummary
from faceindex.vision.analyze import FaceAnalyzer

__all__ = [
    "CommitGuard",
    "FaceScreen",
    "ImageScreen",
    "Progress",
    "Progress_cb",
    "local_runner",
    "pool_context",
    "run_ingest",
]

log = logging.getLogger(__name__)

SKIP_BATCH = 500  # skipped entries recorded per transaction


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
    runner: Runner | None = None,
    guard: CommitGuard | None = None,
    refuse: Mapping[str, str] | None = None,
) -> IngestSummary:
    """Ingest every new or changed item of one source. ``state`` runs in-process (tests,
    one worker); otherwise ``runner``, else ``settings.effective_workers()`` processes.
    ``refuse`` (sha256 -> why) is checked by the local workers right after hashing, before
    any decode (a given ``runner`` carries its own); ``image_screen`` re-checks every batch
    at commit (it sees later erasures), inside ``guard``."""
    started = time.perf_counter()
    seen = catalog.seen_items(source_id)
    plan = survey(source, seen)
    summary = IngestSummary(images_seen=plan.todo + plan.skip + plan.held, images_skipped=plan.held)
    commit = Committer(
        catalog=catalog,
        index=index,
        model=model,
        summary=summary,
        total=plan.todo + plan.skip,
        progress=progress,
        screen=screen,
        image_screen=image_screen,
        guard=guard,
    )
    if plan.skip:  # nothing to read: recorded here, with why
        for batch in batches(pending(source, seen, skipped=True), SKIP_BATCH):
            commit([skipped_outcome(source_id, item) for item in batch])
    if plan.todo:
        width = settings.effective_workers() if runner is None else runner.width
        batch_size = max(1, min(settings.batch_size, plan.todo // max(width * 2, 1) or 1))
        if runner is None:
            small = plan.todo <= batch_size
            if state is not None:
                runner = InProcessRunner(replace(state, refuse=refuse) if refuse else state)
            else:
                runner = local_runner(settings, small=small, refuse=refuse)
        todo = batches(pending(source, seen, skipped=False), batch_size)
        runner.run(source, source_id, todo, commit)
    index.save()
    if plan.changed:  # a file replaced in place moved its location to the new bytes
        summary.images_unheld = len(catalog.unheld_images())
    summary.seconds = time.perf_counter() - started
    return summary


def local_runner(
    settings: Settings, *, small: bool = False, refuse: Mapping[str, str] | None = None
) -> Runner:
    """This machine's runner: the caller's process for one worker or a ``small`` source
    (starting processes would cost more than it saves), else a pool of worker processes."""
    workers = settings.effective_workers()
    if workers == 1 or small:
        return InProcessRunner(worker.WorkerState(settings, _analyzer(settings), refuse))
    return PoolRunner(settings, workers, refuse)


def _analyzer(settings: Settings) -> FaceAnalyzer:
    from faceindex.vision.factory import build_analyzer

    return build_analyzer(settings)
