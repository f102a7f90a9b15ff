"""Ingest jobs started over HTTP: run one at a time in the background, owned by who started them.

A job is visible only to the account that started it; another account asking for its id
is told it does not exist (404), so job ids leak nothing.

The jobs are rows of the governance database (:mod:`faceindex.governance.job_records`), so
every server process of a home answers for every job, and "one at a time" holds across
them. The process that took a job runs it: a worker thread claims its jobs in turn, a
heartbeat thread keeps their rows alive (so a killed process's job is soon reported as
interrupted), and progress is written at most every ``progress_s`` seconds. A queued job
waiting for another process's to finish tries its claim every ``poll_s`` seconds (a short
write transaction each time).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from faceindex.errors import FaceIndexError, NotFoundError
from faceindex.governance.job_records import Counts, Job, JobRecords, Runner
from faceindex.governance.roles import Actor
from faceindex.pipeline.runner import Progress
from faceindex.types import IngestSummary

__all__ = ["IngestJobs", "Job"]

log = logging.getLogger(__name__)

# What a job runs: (who, source name, progress callback) -> summary.
IngestFn = Callable[[Actor, str, Callable[[Progress], None]], IngestSummary]

STOPPED = "cancelled: the server process stopped before the job started"


class IngestJobs:
    def __init__(
        self,
        run: IngestFn,
        records: JobRecords,
        *,
        poll_s: float = 0.5,
        progress_s: float = 0.25,
    ) -> None:
        self._run = run
        self.records = records
        self.runner = Runner.this_process()
        self._poll_s = poll_s
        self._progress_s = progress_s
        # A heartbeat well inside the stale limit: a few missed beats are not a death.
        self._beat_s = max(0.05, records.stale_s / 5)
        self._lock = threading.Lock()
        self._queue: deque[tuple[str, Actor, str]] = deque()  # this process's queued jobs
        self._running: str | None = None
        self._pending: Counts | None = None  # the running job's latest progress
        self._dirty = False  # _pending was held back by the throttle
        self._last_write = 0.0
        self._stop = threading.Event()
        self._stop_beating = threading.Event()  # after the running job: it beats to the end
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, actor: Actor, source: str) -> Job:
        job = self.records.add(actor.name, source, self.runner)
        with self._lock:
            self._queue.append((job.id, actor, source))
            if not self._threads:
                self._threads = [
                    threading.Thread(target=self._work, name="ingest-jobs", daemon=True),
                    threading.Thread(target=self._beat, name="ingest-heartbeat", daemon=True),
                ]
                for thread in self._threads:
                    thread.start()
        self._wake.set()
        return job

    def get(self, owner: str, job_id: str) -> Job:
        job = self.records.get(job_id)
        if job is None or job.owner != owner:
            raise NotFoundError(f"no ingest job {job_id!r}")
        return job

    def of(self, owner: str) -> list[Job]:
        return self.records.of(owner)

    def shutdown(self) -> None:
        """Finish the running job (as before), fail the queued ones, stop the threads."""
        self._stop.set()
        self._wake.set()
        if self._threads:
            work, beat = self._threads
            work.join()
            self._stop_beating.set()
            beat.join()
        if self._threads:
            try:
                self.records.abandon(self.runner, STOPPED)
            except FaceIndexError:
                log.exception("could not mark this process's queued ingest jobs stopped")
        self.records.close()

    # -- the worker thread ----------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                head = self._queue[0] if self._queue else None
            if head is None:
                self._wake.wait(self._poll_s)
                self._wake.clear()
                continue
            job_id, actor, source = head
            try:
                claim = self.records.claim(job_id, self.runner)
            except FaceIndexError:
                log.exception("could not claim ingest job %s; trying again", job_id)
                claim = "wait"
            if claim == "wait":
                self._stop.wait(self._poll_s)
                continue
            with self._lock:
                self._queue.popleft()
                self._running = job_id if claim == "claimed" else None
            if claim == "claimed":
                try:
                    self._execute(job_id, actor, source)
                finally:
                    with self._lock:
                        self._running, self._pending = None, None

    def _execute(self, job_id: str, actor: Actor, source: str) -> None:
        try:
            summary = self._run(actor, source, self._progress)
        except FaceIndexError as exc:
            self._finish(job_id, "failed", error=str(exc))
            return
        except Exception:
            log.exception("ingest job %s failed", job_id)
            self._finish(job_id, "failed", error="internal error")
            return
        counts = Counts(
            total=summary.images_seen - summary.images_skipped,
            done=summary.images_new + len(summary.failed) + len(summary.skipped),
            faces=summary.faces_indexed,
            failed=len(summary.failed),
        )
        self._finish(job_id, "done", counts=counts)

    def _finish(
        self,
        job_id: str,
        status: Literal["done", "failed"],
        *,
        counts: Counts | None = None,
        error: str | None = None,
    ) -> None:
        with self._lock:
            counts = counts or self._pending
        try:
            self.records.finish(job_id, self.runner, status, counts=counts, error=error)
        except FaceIndexError:
            log.exception("could not record the outcome of ingest job %s", job_id)

    def _progress(self, p: Progress) -> None:
        """From the ingest's thread: written now if the last write is old enough, else
        left for the next write or heartbeat."""
        counts = Counts(total=p.total, done=p.done, faces=p.faces, failed=p.failed)
        now = time.monotonic()
        with self._lock:
            self._pending = counts
            job_id = self._running
            due = now - self._last_write >= self._progress_s
            self._dirty = not due
            if due:
                self._last_write = now
        if due and job_id is not None:
            try:
                self.records.progress(job_id, self.runner, counts)
            except FaceIndexError:
                log.warning("could not record progress of ingest job %s", job_id, exc_info=True)

    # -- the heartbeat thread -------------------------------------------------------------

    def _beat(self) -> None:
        """Every ``beat_s`` while this process has live jobs; sooner (about once a second)
        when progress the throttle held back is waiting to be written."""
        last_beat = 0.0
        while not self._stop_beating.wait(min(self._beat_s, 1.0)):
            with self._lock:
                job_id, pending, dirty = self._running, self._pending, self._dirty
                live = bool(self._queue) or job_id is not None
                self._dirty = False
            now = time.monotonic()
            if not live or (not dirty and now - last_beat < self._beat_s):
                continue
            running = (job_id, pending) if job_id is not None and pending is not None else None
            try:
                self.records.beat(self.runner, running)
                last_beat = now
            except FaceIndexError:
                log.warning("could not refresh ingest job heartbeats", exc_info=True)
