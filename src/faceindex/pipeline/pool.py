"""Ingest batches on worker processes, surviving a worker that dies on an item.

A decoder or dlib can take its process down: dlib's CNN corrupts the heap and aborts on
some tiny inputs, the kernel kills a process out of memory, and a call stuck in C past the
hard time limit is ended by the kernel (see :mod:`faceindex.pipeline.worker`). The executor
then fails every batch in flight, innocent or not. Their items are run again one at a time,
alone in a fresh pool: the innocent ones finish, and an item that takes its worker down when
alone is recorded as a failure with that reason, so one poison file costs itself only.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from faceindex.catalog.base import ImageOutcome
from faceindex.config import Settings
from faceindex.errors import ModelError
from faceindex.pipeline import worker
from faceindex.pipeline.base import Commit
from faceindex.pipeline.stages import failed_outcome
from faceindex.sources.base import ImageSource, SourceItem, printable

__all__ = ["DIED", "pool_context", "run_pool"]

log = logging.getLogger(__name__)

DIED = (
    "the worker process died on this item (a crash in a decoder or in dlib, out of memory,"
    " or stuck past ingest_item_timeout_s)"
)


def pool_context() -> mp.context.BaseContext:
    """forkserver: workers start from a clean process. Forking a parent that has run dlib,
    OpenBLAS or FAISS threads deadlocks the children (seen here with fork), and the HTTP
    server has threads of its own. Scripts must be importable (not piped on stdin)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["faceindex.pipeline.worker"])
    return ctx


def _start(
    settings: Settings, workers: int, refuse: Mapping[str, str] | None = None
) -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=pool_context(),
        initializer=worker.init_worker,
        initargs=(settings, 1, refuse),
    )
    try:
        ready = pool.submit(worker.ready).result()
    except BrokenProcessPool as exc:  # the models did not load: no item is to blame
        pool.shutdown(wait=True)
        raise ModelError("ingest workers failed to start (their models did not load)") from exc
    if not ready:
        pool.shutdown(wait=True)
        raise ModelError("ingest workers started without their models")
    return pool


def run_pool(
    settings: Settings,
    workers: int,
    source: ImageSource,
    source_id: int,
    batches: Iterator[list[SourceItem]],
    commit: Commit,
    refuse: Mapping[str, str] | None = None,
) -> None:
    suspects: deque[SourceItem] = deque()
    while True:
        pool = _start(settings, workers, refuse)
        try:
            if not _try_alone(pool, source, source_id, suspects, commit):
                continue  # the pool died with a suspect: a fresh one for the rest
            lost = _drain(pool, workers, source, source_id, batches, commit)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if not lost:
            return
        log.warning("an ingest worker died; retrying %d items one at a time", sum(map(len, lost)))
        suspects.extend(item for batch in lost for item in batch)


def _try_alone(
    pool: ProcessPoolExecutor,
    source: ImageSource,
    source_id: int,
    suspects: deque[SourceItem],
    commit: Commit,
) -> bool:
    """Run each suspect alone; False when one took the pool down (it is recorded)."""
    while suspects:
        item = suspects[0]
        try:
            outcomes = pool.submit(worker.process_batch, source, source_id, [item]).result()
        except BrokenProcessPool:
            suspects.popleft()
            log.warning("ingest of %s killed its worker process", printable(item.locator))
            commit([failed_outcome(source_id, item, None, DIED)])
            return False
        suspects.popleft()
        commit(outcomes)
    return True


def _drain(
    pool: ProcessPoolExecutor,
    workers: int,
    source: ImageSource,
    source_id: int,
    batches: Iterator[list[SourceItem]],
    commit: Commit,
) -> list[list[SourceItem]]:
    """Run every batch; returns the batches lost when a worker died ([] when all done)."""
    in_flight: dict[Future[list[ImageOutcome]], list[SourceItem]] = {}
    exhausted = False
    while in_flight or not exhausted:
        while not exhausted and len(in_flight) < workers * 2:
            batch = next(batches, None)
            if batch is None:
                exhausted = True
                break
            in_flight[pool.submit(worker.process_batch, source, source_id, batch)] = batch
        if not in_flight:
            break
        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        broken = False
        for fut in done:
            if isinstance(fut.exception(), BrokenProcessPool):
                broken = True
                continue
            commit(fut.result())
            del in_flight[fut]
        if broken:
            return list(in_flight.values())
    return []
