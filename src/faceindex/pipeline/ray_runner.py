"""Ingest on a Ray cluster: actors analyse batches, the driver commits them.

* **One model load per actor.** Each actor (one CPU) builds its models once, as a local
  worker process does, and runs the same per-item stages
  (:func:`faceindex.pipeline.worker.run_batch`).
* **Actors read the bytes themselves.** Every source kind (folder, archive, URL list) is
  named by a path, and the source object travels to each actor once, not per batch; the
  driver ships only item names and gets back outcomes (boxes, landmarks, descriptors: a few
  KB per image), so its network is not the limit. On a cluster that path must be the same
  on every node (a shared file system); each actor checks at start that it sees it, and the
  run stops with that reason before any work when one does not. A URL list's provenance
  file is appended to by whichever node fetched, under a file lock, so it belongs on that
  shared file system too.
* **The driver commits.** Every finished batch goes through the one commit path
  (:class:`~faceindex.pipeline.commit.Committer`: screens, catalog transaction, index add,
  progress) in the driving process, with SQLite + FAISS and with PostgreSQL + Milvus alike:
  the screens read governance state the actors do not hold, and one writer keeps the
  catalog's transactions short. docs/SCALING.md has the commit rates this sustains.
* **Backpressure.** At most two batches per actor are in flight; the next batch is pulled
  from the lazy listing (:mod:`faceindex.pipeline.plan`) only when one finishes.
* **Crash safety.** An actor whose process dies (killed, out of memory, a crash in C, an
  item past the hard time limit) is restarted by Ray with its models, and Ray runs its
  batch once more; when that fails too, the batch's items run alone, and an item that takes
  its actor down alone is recorded as failed with :data:`~faceindex.pipeline.pool.DIED`, as
  in the local pool. Nothing is acknowledged before the driver's commit, so a killed driver
  loses only batches in flight, which a rerun reads again (the catalog's seen items).
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterator, Mapping
from types import ModuleType, TracebackType
from typing import Any

from faceindex.catalog.base import ImageOutcome
from faceindex.config import Settings
from faceindex.errors import ConfigError, MissingDependency, ModelError
from faceindex.pipeline import worker
from faceindex.pipeline.base import Commit
from faceindex.pipeline.pool import DIED
from faceindex.pipeline.stages import failed_outcome
from faceindex.sources.base import ImageSource, SourceItem, printable

__all__ = ["RayRunner", "import_ray"]

log = logging.getLogger(__name__)

IN_FLIGHT_PER_ACTOR = 2
# A Ray started inside the driver holds only outcomes in its object store (a few KB per
# image); Ray's default reserves 30% of the machine's memory for it.
LOCAL_OBJECT_STORE_BYTES = 128 * 1024 * 1024


def import_ray() -> ModuleType:
    """The ``ray`` module, or a MissingDependency that says which extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependency(
            "the Ray runner needs Ray, which is not installed: pip install 'faceindex[ray]'"
        ) from exc
    return ray


class Analyst:
    """The actor: one per CPU of the cluster, models loaded once (see the module text)."""

    def __init__(
        self, settings: Settings, source: ImageSource, refuse: Mapping[str, str] | None = None
    ) -> None:
        # Before the models load: one BLAS/ONNX thread per actor, each actor holds a CPU.
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        os.environ["OMP_NUM_THREADS"] = "1"
        from faceindex.vision.factory import build_analyzer

        analyzer = build_analyzer(settings, threads=1)
        self.state = worker.WorkerState(settings, analyzer, refuse)  # refuse: never decoded
        self.source = source

    def ready(self) -> str:
        """Empty when this actor can read the source, else why not (with its node)."""
        if os.path.exists(self.source.uri):
            return ""
        import socket

        return f"{self.source.uri} is not reachable on node {socket.gethostname()}"

    def analyse(self, source_id: int, items: list[SourceItem]) -> list[ImageOutcome]:
        return worker.run_batch(self.state, self.source, source_id, items, hard_limit=True)


class RayRunner:
    """Ray actors for a :func:`~faceindex.pipeline.runner.run_ingest`. Use it as a context
    manager: it connects to ``address`` (as ``ray.init`` takes it: ``auto``, ``host:port``,
    ``ray://host:port``; empty: a Ray started inside this process) on entry and lets go on
    exit. ``actors``: how many (0: one per CPU the cluster has)."""

    def __init__(
        self,
        settings: Settings,
        *,
        address: str = "",
        actors: int = 0,
        refuse: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.refuse = dict(refuse) if refuse else None  # sha256 -> why, shipped to each actor
        self.address = address
        self.actors = actors
        self._ray: ModuleType | None = None
        self._owned = False
        self._restore: tuple[Any, Any] | None = None

    def __enter__(self) -> RayRunner:
        import_ray()  # a missing extra is said before any work
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ray is not None and self._owned:
            self._ray.shutdown()
        if self._restore is not None:
            internals, original = self._restore
            internals.print_to_stdstream = original
        self._ray, self._owned, self._restore = None, False, None

    @property
    def width(self) -> int:
        if not self.actors:
            ray = self._connect()
            self.actors = max(1, int(ray.cluster_resources().get("CPU", 1)))
        return self.actors

    def _connect(self) -> ModuleType:
        """Ray, connected on first use (a rerun with nothing new never starts it)."""
        if self._ray is not None:
            return self._ray
        ray = import_ray()
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nodes phone nowhere
            try:
                # log_to_driver off: Ray would print its workers' and raylets' lines on
                # this process's stdout, into the CLI's --json summary; they stay in the
                # session's log folder, and a dead actor is logged here (see _drain).
                quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
                if self.address:
                    ray.init(address=self.address, **quiet)
                else:
                    ray.init(
                        num_cpus=self.settings.effective_workers(),
                        include_dashboard=False,
                        object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                        **quiet,
                    )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = self.address or "a local Ray"
                raise ConfigError(f"cannot start or reach Ray at {where}: {exc}") from exc
            self._owned = True
        self._ray = ray
        self._quiet_stdout(ray)
        return ray

    def _quiet_stdout(self, ray: ModuleType) -> None:
        """Ray's driver prints the errors its cluster pushes ('A worker died ...') on this
        process's stdout whatever ``log_to_driver`` says, into a ``--json`` summary. They
        go to this module's log instead while the runner is connected (the hook is Ray's
        private ``print_to_stdstream``, checked by tests/integration/test_ray_cluster.py
        at the pinned version; absent, Ray prints as before)."""
        internals = getattr(getattr(ray, "_private", None), "worker", None)
        if internals is None or not hasattr(internals, "print_to_stdstream"):
            return
        self._restore = (internals, internals.print_to_stdstream)

        def to_log(data: dict[str, Any], ignore_prefix: bool = False) -> None:
            for line in data.get("lines", ()):
                log.warning("ray (%s): %s", data.get("pid", "?"), line)

        internals.print_to_stdstream = to_log

    def run(
        self,
        source: ImageSource,
        source_id: int,
        batches: Iterator[list[SourceItem]],
        commit: Commit,
    ) -> None:
        ray = self._connect()
        actor_class = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=1)(Analyst)
        actors = [actor_class.remote(self.settings, source, self.refuse) for _ in range(self.width)]
        try:
            _check_ready(ray, actors)
            _drain(ray, actors, source_id, batches, commit)
        finally:
            for actor in actors:
                ray.kill(actor)


def _check_ready(ray: ModuleType, actors: list[Any]) -> None:
    try:
        reasons = ray.get([a.ready.remote() for a in actors])
    except ray.exceptions.RayError as exc:
        raise ModelError(f"Ray ingest actors failed to start (their models?): {exc}") from exc
    unreachable = sorted({r for r in reasons if r})
    if unreachable:
        raise ConfigError(
            "the source must be at the same path on every Ray node: " + "; ".join(unreachable)
        )


def _drain(
    ray: ModuleType,
    actors: list[Any],
    source_id: int,
    batches: Iterator[list[SourceItem]],
    commit: Commit,
) -> None:
    """Every batch through the actors, at most IN_FLIGHT_PER_ACTOR each; the items of a
    batch whose actor died (after Ray's own retry) run again alone."""
    load = [0] * len(actors)
    in_flight: dict[Any, tuple[int, list[SourceItem], bool]] = {}  # ref -> actor, batch, alone
    suspects: deque[SourceItem] = deque()
    exhausted = False
    while True:
        while len(in_flight) < IN_FLIGHT_PER_ACTOR * len(actors):
            if suspects:
                batch, alone = [suspects.popleft()], True
            elif not exhausted and (nxt := next(batches, None)) is not None:
                batch, alone = nxt, False
            else:
                exhausted = True
                break
            i = load.index(min(load))
            in_flight[actors[i].analyse.remote(source_id, batch)] = (i, batch, alone)
            load[i] += 1
        if not in_flight:
            return
        done, _ = ray.wait(list(in_flight), num_returns=1)
        for ref in done:
            i, batch, alone = in_flight.pop(ref)
            load[i] -= 1
            try:
                outcomes = ray.get(ref)
            except ray.exceptions.RayActorError:
                if alone:
                    log.warning("ingest of %s killed its Ray actor", printable(batch[0].locator))
                    commit([failed_outcome(source_id, batch[0], None, DIED)])
                else:
                    log.warning("a Ray ingest actor died; retrying %d items alone", len(batch))
                    suspects.extend(batch)
                continue
            commit(outcomes)
