"""The runners on this machine: in the caller's process, or on a pool of worker processes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from faceindex.config import Settings
from faceindex.pipeline import worker
from faceindex.pipeline.base import Commit
from faceindex.pipeline.pool import run_pool
from faceindex.sources.base import ImageSource, SourceItem

__all__ = ["InProcessRunner", "PoolRunner"]


@dataclass(frozen=True)
class InProcessRunner:
    """Every batch in the calling process, with models it already holds (tests, one worker,
    a source smaller than one batch)."""

    state: worker.WorkerState

    @property
    def width(self) -> int:
        return 1

    def run(
        self,
        source: ImageSource,
        source_id: int,
        batches: Iterator[list[SourceItem]],
        commit: Commit,
    ) -> None:
        for batch in batches:
            commit(worker.run_batch(self.state, source, source_id, batch))


@dataclass(frozen=True)
class PoolRunner:
    """``workers`` processes, each loading its models once (see :mod:`pipeline.pool` for
    how a worker that dies on an item costs that item only)."""

    settings: Settings
    workers: int
    refuse: Mapping[str, str] | None = None  # sha256 -> why: never decoded (erased bytes)

    @property
    def width(self) -> int:
        return self.workers

    def run(
        self,
        source: ImageSource,
        source_id: int,
        batches: Iterator[list[SourceItem]],
        commit: Commit,
    ) -> None:
        run_pool(
            self.settings, self.workers, source, source_id, batches, commit, refuse=self.refuse
        )
