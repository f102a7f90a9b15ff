"""How the async server calls the synchronous engine: bounded, admitted, timed.

* :class:`LockedIndex` lets searches read the vector index together while an ingest job's
  ``add``/``save`` or an erasure's ``remove`` waits for them (FAISS is not safe to mutate
  while another thread searches).
* :class:`EnginePool` holds one :class:`Engine` view per thread slot. The views share the
  catalog (thread-safe) and the locked index, but each has its own face models, because a
  dlib network keeps per-call state and must not run in two threads at once. With
  ``analyzers`` (server/workers.py), each view's probe analysis runs in its own worker
  process instead: dlib holds the GIL, which would stall every other request.
* :class:`EngineRunner` admits a call only while fewer than ``threads + queue`` are in
  flight (otherwise :class:`Busy`, answered 429), runs it in a worker thread with a free
  engine, and answers :class:`TimedOut` (503) when the request timeout passes, counted from
  admission; the view's worker process, if any, is stopped at that deadline too, so
  abandoned work does not pile up behind new requests.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import anyio
import numpy as np
from anyio import to_thread

from faceindex.engine import Engine
from faceindex.index.base import VectorIndex

if TYPE_CHECKING:
    from faceindex.server.workers import RemoteAnalyzer

__all__ = ["Busy", "EnginePool", "EngineRunner", "LockedIndex", "TimedOut"]

T = TypeVar("T")


class Busy(Exception):
    """Every engine slot and queue place is taken; the client should retry later."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("the server is busy: too many searches in flight; retry shortly")
        self.retry_after = retry_after


class TimedOut(Exception):
    """The engine call ran past the request timeout."""


class _ReadWriteLock:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            # Writers go first once waiting, so a stream of searches cannot starve an ingest.
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class LockedIndex:
    """A :class:`VectorIndex` wrapper: many concurrent readers, one writer."""

    def __init__(self, inner: VectorIndex) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.metric = inner.metric
        self.capabilities = inner.capabilities
        self._lock = _ReadWriteLock()

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        with self._lock.writing():
            self.inner.add(ids, vectors)

    def remove(self, ids: np.ndarray) -> int:
        with self._lock.writing():
            return self.inner.remove(ids)

    def search(
        self, queries: np.ndarray, k: int, *, within: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        with self._lock.reading():
            return self.inner.search(queries, k, within=within)

    def count(self) -> int:
        with self._lock.reading():
            return self.inner.count()

    def ids(self) -> np.ndarray:
        with self._lock.reading():
            return self.inner.ids()

    def save(self) -> None:
        with self._lock.writing():
            self.inner.save()

    def close(self) -> None:
        with self._lock.writing():
            self.inner.close()


class EnginePool:
    """``size`` engine views over one catalog and one locked index, lent one per thread;
    with ``analyzers`` (one per view), each view analyses probes in its worker process."""

    def __init__(
        self, primary: Engine, size: int, analyzers: Sequence[RemoteAnalyzer] = ()
    ) -> None:
        if analyzers and len(analyzers) != size:
            raise ValueError("one remote analyzer per engine view")
        self.primary = primary
        self.analyzers = list(analyzers)
        self._free: queue.Queue[tuple[Engine, RemoteAnalyzer | None]] = queue.Queue()
        for n in range(size):
            view = Engine(primary.settings, primary.catalog, primary.index, primary.pack)
            remote = self.analyzers[n] if self.analyzers else None
            view.probe_analyzer = remote
            self._free.put((view, remote))

    @contextmanager
    def borrow(self, deadline: float = float("inf")) -> Iterator[Engine]:
        """An engine view whose probe analysis must finish by ``deadline`` (monotonic)."""
        engine, remote = self._free.get()
        if remote is not None:
            remote.deadline = deadline
        try:
            yield engine
        finally:
            self._free.put((engine, remote))

    def close(self) -> None:
        """Stop the worker processes."""
        for remote in self.analyzers:
            remote.worker.stop()

    def view(self) -> Engine:
        """A fresh view with its own models (for a long job that must not hold a slot)."""
        p = self.primary
        return Engine(p.settings, p.catalog, p.index, p.pack)


class EngineRunner:
    def __init__(self, pool: EnginePool, *, threads: int, queue: int, timeout_s: float) -> None:
        self.pool = pool
        self.capacity = threads + queue
        self.timeout_s = timeout_s
        self._limiter = anyio.CapacityLimiter(threads)
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def run(self, fn: Callable[[Engine], T]) -> T:
        """Run ``fn(engine)`` in a worker thread with an engine of its own."""
        if self._in_flight >= self.capacity:
            raise Busy(retry_after=1)
        self._in_flight += 1
        deadline = time.monotonic() + self.timeout_s

        def call() -> T:
            if time.monotonic() >= deadline:  # waited its whole time for a thread
                raise TimedOut(f"the engine did not answer within {self.timeout_s:g} s")
            with self.pool.borrow(deadline) as engine:
                return fn(engine)

        try:
            with anyio.move_on_after(self.timeout_s) as scope:
                # An abandoned thread returns its engine to the pool once its call ends: at
                # the deadline where the analysis runs in a worker process (the process is
                # stopped then); the pool, not the limiter, bounds the models in use.
                return await to_thread.run_sync(call, limiter=self._limiter, abandon_on_cancel=True)
            if scope.cancelled_caught:
                raise TimedOut(f"the engine did not answer within {self.timeout_s:g} s")
            raise TimedOut("the engine call was cancelled")  # pragma: no cover
        finally:
            self._in_flight -= 1

    async def light(self, fn: Callable[[Engine], T]) -> T:
        """Catalog reads that need no face model: any thread, the primary engine."""
        return await to_thread.run_sync(fn, self.pool.primary)
