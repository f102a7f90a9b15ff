"""HTTP ingest jobs as rows of the governance database, so every server process of a home
answers for every job (``ingest_jobs`` beside the governance store's tables:
``governance.db`` or PostgreSQL, ``governance/database.py``).

The process that took a job runs it and is the only writer of its row: progress, a
heartbeat, the outcome. Any process reads it. Three rules make the rows one truth:

* **One job at a time, across processes.** A job moves from ``queued`` to ``running`` only
  by :meth:`JobRecords.claim`, a transaction that first locks the one ``ingest_slot`` row
  (SQLite: the file's write lock, taken up front; PostgreSQL: ``SELECT ... FOR UPDATE``),
  then checks that no job runs and none was queued before it (first come, first served,
  whichever process took it).
* **A dead process's job does not stay live.** Each live row carries its process (pid,
  host, a random runner id) and a heartbeat time its process refreshes every few seconds.
  A queued or running row whose heartbeat is older than ``stale_s`` is reported as
  ``failed`` ("interrupted") by every read, and written so by the next claim, which then
  lets the queue go on. The heartbeat is the writer's wall clock: processes on several
  hosts need clocks within a fraction of ``stale_s`` of each other.
* **Only the runner writes its row** (``WHERE runner = ?``): a row another process has
  declared interrupted takes no more progress; its final outcome, should the job still
  finish, is written all the same (it is the truth).
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, TypeVar

from faceindex.errors import StorageError
from faceindex.governance.database import Database, Tx

__all__ = ["Counts", "Job", "JobRecords", "Runner"]

T = TypeVar("T")

KEEP_FINISHED = 200  # finished jobs kept, over every account (the oldest go first)
LIVE = ("queued", "running")

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS ingest_jobs (
        id TEXT PRIMARY KEY, owner TEXT NOT NULL, source TEXT NOT NULL,
        status TEXT NOT NULL, created REAL NOT NULL, started REAL, finished REAL,
        total INTEGER NOT NULL DEFAULT 0, done INTEGER NOT NULL DEFAULT 0,
        faces INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0, error TEXT,
        runner TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL,
        heartbeat REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS ingest_jobs_owner ON ingest_jobs (owner, created)",
    "CREATE INDEX IF NOT EXISTS ingest_jobs_status ON ingest_jobs (status, created)",
    "CREATE TABLE IF NOT EXISTS ingest_slot (name TEXT PRIMARY KEY)",
]
_COLUMNS = (
    "id, owner, source, status, created, started, finished, total, done, faces, failed,"
    " error, runner, pid, host, heartbeat"
)

Claim = Literal["claimed", "wait", "gone"]


def _iso(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Runner:
    """One process that runs jobs: its random id (a pid may be reused), pid and host."""

    id: str
    pid: int
    host: str

    @classmethod
    def this_process(cls) -> Runner:
        return cls(secrets.token_hex(8), os.getpid(), socket.gethostname())


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
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    pid: int = 0
    host: str = ""


@dataclass(frozen=True)
class Counts:
    total: int
    done: int
    faces: int
    failed: int


def interrupted(pid: object, host: object) -> str:
    return (
        f"interrupted: the server process that ran it (pid {pid} on {host}) "
        "stopped before it finished"
    )


class JobRecords:
    """The ``ingest_jobs`` rows of one governance database (see the module docstring)."""

    def __init__(
        self, db: Database, *, stale_s: float = 30.0, clock: Callable[[], float] | None = None
    ) -> None:
        """Over ``db``, a connection of the job rows' own (on SQLite its commits are made
        without an fsync: heartbeats are many and worth little after a power cut)."""
        self.stale_s = stale_s
        self._db = db
        self._clock = clock or time.time
        self._for_update = " FOR UPDATE" if db.dialect == "postgresql" else ""
        try:
            if db.dialect == "sqlite":
                # This connection's commits skip the fsync (WAL stays consistent; a power
                # cut may lose the last beats, a killed process loses nothing): under
                # heavy disk load a synced heartbeat was seen to take seconds.
                db.ddl(["PRAGMA synchronous=NORMAL"])
            db.ddl(_SCHEMA)
            with db.tx() as tx:
                tx.execute("INSERT INTO ingest_slot VALUES ('ingest') ON CONFLICT DO NOTHING")
        except db.errors as exc:
            raise StorageError(f"cannot open ingest jobs in {db.url}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    # -- reads (any process) ------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        rows = self._read(f"SELECT {_COLUMNS} FROM ingest_jobs WHERE id = ?", (job_id,))
        return self._job(rows[0]) if rows else None

    def of(self, owner: str) -> list[Job]:
        """``owner``'s jobs, newest first."""
        rows = self._read(
            f"SELECT {_COLUMNS} FROM ingest_jobs WHERE owner = ? ORDER BY created DESC, id DESC",
            (owner,),
        )
        return [self._job(r) for r in rows]

    # -- writes (the runner of the job) -------------------------------------------------

    def add(self, owner: str, source: str, runner: Runner) -> Job:
        """A new queued job, run by ``runner``."""
        job_id = secrets.token_hex(12)
        now = self._clock()
        self._write(
            lambda tx: tx.execute(
                f"INSERT INTO ingest_jobs ({_COLUMNS}) VALUES"
                " (?,?,?,'queued',?,NULL,NULL,0,0,0,0,NULL,?,?,?,?)",
                (job_id, owner, source, now, runner.id, runner.pid, runner.host, now),
            ),
            "add an ingest job",
        )
        job = self.get(job_id)
        if job is None:  # pragma: no cover - a row just committed
            raise StorageError(f"ingest job {job_id} vanished from {self._db.url}")
        return job

    def claim(self, job_id: str, runner: Runner) -> Claim:
        """Start ``job_id`` if nothing runs and nothing was queued before it: ``claimed``;
        ``wait`` to try again later; ``gone`` if the job is no longer queued (declared
        interrupted, or not ``runner``'s)."""

        def claim(tx: Tx) -> Claim:
            tx.execute(f"SELECT name FROM ingest_slot WHERE name = 'ingest'{self._for_update}")
            now = self._clock()
            self._expire(tx, now)
            row = tx.execute(
                "SELECT created FROM ingest_jobs WHERE id = ? AND runner = ? AND status = 'queued'",
                (job_id, runner.id),
            ).fetchone()
            if row is None:
                return "gone"
            ahead = tx.execute(
                "SELECT id FROM ingest_jobs WHERE status = 'running' OR (status = 'queued'"
                " AND (created < ? OR (created = ? AND id < ?))) LIMIT 1",
                (row[0], row[0], job_id),
            ).fetchone()
            if ahead is not None:
                return "wait"
            tx.execute(
                "UPDATE ingest_jobs SET status = 'running', started = ?, heartbeat = ?"
                " WHERE id = ?",
                (now, now, job_id),
            )
            return "claimed"

        return self._write(claim, "claim an ingest job")

    def beat(self, runner: Runner, running: tuple[str, Counts] | None = None) -> None:
        """Refresh the heartbeat of ``runner``'s live jobs (and the running one's counts)."""
        now = self._clock()

        def beat(tx: Tx) -> None:
            tx.execute(
                "UPDATE ingest_jobs SET heartbeat = ? WHERE runner = ? AND status IN (?, ?)",
                (now, runner.id, *LIVE),
            )
            if running is not None:
                self._counts(tx, running[0], runner, running[1])

        self._write(beat, "record ingest progress")

    def progress(self, job_id: str, runner: Runner, counts: Counts) -> None:
        self.beat(runner, (job_id, counts))

    def finish(
        self,
        job_id: str,
        runner: Runner,
        status: Literal["done", "failed"],
        *,
        counts: Counts | None = None,
        error: str | None = None,
    ) -> None:
        """The outcome, written whatever another process declared meanwhile; the oldest
        finished jobs past :data:`KEEP_FINISHED` go."""
        now = self._clock()

        def finish(tx: Tx) -> None:
            tx.execute(
                "UPDATE ingest_jobs SET status = ?, error = ?, finished = ?, heartbeat = ?"
                " WHERE id = ? AND runner = ?",
                (status, error, now, now, job_id, runner.id),
            )
            if counts is not None:
                self._counts(tx, job_id, runner, counts, live_only=False)
            tx.execute(
                "DELETE FROM ingest_jobs WHERE status IN ('done', 'failed') AND id NOT IN"
                " (SELECT id FROM ingest_jobs WHERE status IN ('done', 'failed')"
                " ORDER BY finished DESC, id DESC LIMIT ?)",
                (KEEP_FINISHED,),
            )

        self._write(finish, "finish an ingest job")

    def abandon(self, runner: Runner, reason: str) -> int:
        """Fail ``runner``'s jobs still queued (its process is stopping); how many."""
        now = self._clock()

        def abandon(tx: Tx) -> int:
            cur = tx.execute(
                "UPDATE ingest_jobs SET status = 'failed', error = ?, finished = ?"
                " WHERE runner = ? AND status = 'queued'",
                (reason, now, runner.id),
            )
            return int(cur.rowcount)

        return self._write(abandon, "stop ingest jobs")

    # -- helpers --------------------------------------------------------------------------

    def _counts(
        self, tx: Tx, job_id: str, runner: Runner, c: Counts, *, live_only: bool = True
    ) -> None:
        live = " AND status = 'running'" if live_only else ""
        tx.execute(
            "UPDATE ingest_jobs SET total = ?, done = ?, faces = ?, failed = ?"
            f" WHERE id = ? AND runner = ?{live}",
            (c.total, c.done, c.faces, c.failed, job_id, runner.id),
        )

    def _expire(self, tx: Tx, now: float) -> None:
        stale = tx.execute(
            "SELECT id, pid, host, heartbeat FROM ingest_jobs WHERE status IN (?, ?)"
            " AND heartbeat < ?",
            (*LIVE, now - self.stale_s),
        ).fetchall()
        for job_id, pid, host, heartbeat in stale:  # finished: its last sign of life
            tx.execute(
                "UPDATE ingest_jobs SET status = 'failed', error = ?, finished = ? WHERE id = ?",
                (interrupted(pid, host), heartbeat, job_id),
            )

    def _job(self, row: Any) -> Job:
        (job_id, owner, source, status, created, started, finished) = row[:7]
        total, done, faces, failed, error, _runner, pid, host, heartbeat = row[7:]
        if status in LIVE and float(heartbeat) < self._clock() - self.stale_s:
            # Its process stopped beating: what the next claim will write, said now.
            status, error, finished = "failed", interrupted(pid, host), float(heartbeat)
        return Job(
            id=str(job_id),
            owner=str(owner),
            source=str(source),
            status=str(status),
            created_at=_iso(float(created)) or "",
            total=int(total),
            done=int(done),
            faces=int(faces),
            failed=int(failed),
            started_at=_iso(None if started is None else float(started)),
            finished_at=_iso(None if finished is None else float(finished)),
            error=None if error is None else str(error),
            pid=int(pid),
            host=str(host),
        )

    def _read(self, sql: str, params: tuple[object, ...]) -> list[Any]:
        try:
            return self._db.rows(sql, params)
        except self._db.errors as exc:
            raise StorageError(f"cannot read ingest jobs in {self._db.url}: {exc}") from exc

    def _write(self, fn: Callable[[Tx], T], what: str) -> T:
        try:
            with self._db.tx() as tx:
                return fn(tx)
        except self._db.errors as exc:
            raise StorageError(f"cannot {what} in {self._db.url}: {exc}") from exc
