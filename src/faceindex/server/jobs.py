"""Ingest jobs started over HTTP: run one at a time in the background, owned by who started them.

A job is visible only to the account that started it; another account asking for its id
is told it does not exist (404), so job ids leak nothing.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from faceindex.errors import FaceIndexError, NotFoundError
from faceindex.governance.roles import Actor
from faceindex.pipeline.runner import Progress
from faceindex.types import IngestSummary

__all__ = ["IngestJobs", "Job"]

log = logging.getLogger(__name__)

KEEP_FINISHED = 200


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Job:
    id: str
    owner: str
    source: str
    status: str  # queued | running | done | failed
    created_at: str
    total: int = 0
    done: int = 0
    faces: int = 0
    failed: int = 0
    finished_at: str | None = None
    error: str | None = None
    summary: IngestSummary | None = None


# What a job runs: (who, source name, progress callback) -> summary.
IngestFn = Callable[[Actor, str, Callable[[Progress], None]], IngestSummary]


class IngestJobs:
    def __init__(self, run: IngestFn) -> None:
        self._run = run
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        # One at a time: ingest already uses every core through its worker processes.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest")

    def start(self, actor: Actor, source: str) -> Job:
        job = Job(secrets.token_hex(12), actor.name, source, "queued", _now())
        with self._lock:
            self._jobs[job.id] = job
            self._trim()
        self._pool.submit(self._execute, job.id, actor)
        return job

    def get(self, owner: str, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.owner != owner:
            raise NotFoundError(f"no ingest job {job_id!r}")
        return job

    def of(self, owner: str) -> list[Job]:
        with self._lock:
            return [j for j in reversed(self._jobs.values()) if j.owner == owner]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _update(self, job_id: str, **changes: object) -> None:
        with self._lock:
            self._jobs[job_id] = replace(self._jobs[job_id], **changes)  # type: ignore[arg-type]

    def _execute(self, job_id: str, actor: Actor) -> None:
        with self._lock:
            source = self._jobs[job_id].source
        self._update(job_id, status="running")

        def progress(p: Progress) -> None:
            self._update(job_id, total=p.total, done=p.done, faces=p.faces, failed=p.failed)

        try:
            summary = self._run(actor, source, progress)
        except FaceIndexError as exc:
            self._update(job_id, status="failed", error=str(exc), finished_at=_now())
            return
        except Exception:
            log.exception("ingest job %s failed", job_id)
            self._update(job_id, status="failed", error="internal error", finished_at=_now())
            return
        self._update(
            job_id,
            status="done",
            total=summary.images_seen - summary.images_skipped,
            done=summary.images_new + len(summary.failed) + len(summary.skipped),
            faces=summary.faces_indexed,
            failed=len(summary.failed),
            summary=summary,
            finished_at=_now(),
        )

    def _trim(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.status in ("done", "failed")]
        for key in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[key]
