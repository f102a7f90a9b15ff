"""The runner seam: what turns a source's batches of items into outcomes.

A runner only analyses. It pulls batches lazily from the iterator it is given (so nothing
holds a source's whole item list), runs the per-item stages (:mod:`faceindex.pipeline.stages`
through :func:`faceindex.pipeline.worker.run_batch`) wherever it runs them, and hands each
finished batch's outcomes to ``commit`` in the calling thread, one batch at a time, in any
order. Screening, the catalog commit, the index add and progress happen in that one commit
path (:mod:`faceindex.pipeline.commit`), the same for every runner.

Runners: :class:`~faceindex.pipeline.local.InProcessRunner` (the caller's process),
:class:`~faceindex.pipeline.local.PoolRunner` (worker processes on this machine) and
:class:`~faceindex.pipeline.ray_runner.RayRunner` (Ray actors on a cluster).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from faceindex.catalog.base import ImageOutcome
from faceindex.sources.base import ImageSource, SourceItem

__all__ = ["Commit", "Runner"]

# The one commit path, given each finished batch's outcomes.
Commit = Callable[[list[ImageOutcome]], None]


class Runner(Protocol):
    @property
    def width(self) -> int:
        """How many batches it analyses at once (sizes the batches of a small source)."""
        ...

    def run(
        self,
        source: ImageSource,
        source_id: int,
        batches: Iterator[list[SourceItem]],
        commit: Commit,
    ) -> None:
        """Analyse every batch and commit each one's outcomes. An item that takes its worker
        down is recorded as failed with the reason; every other item is committed."""
        ...
