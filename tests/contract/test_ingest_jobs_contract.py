"""HTTP ingest jobs in the governance database behave the same on SQLite and PostgreSQL:
rows any process reads, one job at a time across processes (a claim on one locked row),
first come first served, a dead process's job reported and then written as interrupted.

Each "process" here is a JobRecords (or IngestJobs) over a connection of its own, as a
server process would hold. The PostgreSQL half runs when FACEINDEX_TEST_PG_URL is set
(bash scripts/start-postgres.sh); each test gets a schema of its own, dropped at the end.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from faceindex.errors import InputError, NotFoundError
from faceindex.governance import job_records
from faceindex.governance.database import Database, open_database
from faceindex.governance.job_records import Counts, JobRecords, Runner
from faceindex.governance.roles import Actor, Role
from faceindex.pipeline.runner import Progress
from faceindex.server.jobs import IngestJobs
from faceindex.types import IngestSummary
from tests.contract.builders import PG_ENV

pytestmark = pytest.mark.contract

STALE_S = 30.0
OpenRecords = Callable[..., JobRecords]


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def governance_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'gov'}"
        return
    admin = os.environ.get(PG_ENV, "")
    if not admin:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (bash scripts/start-postgres.sh prints one)")
    psycopg = pytest.importorskip("psycopg", reason="pip install 'faceindex[postgres]'")
    try:
        psycopg.connect(admin, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(f"{PG_ENV} is set but PostgreSQL is not reachable there: {exc}")
    schema = f"j_{uuid.uuid4().hex[:16]}"
    yield f"{admin}{'&' if '?' in admin else '?'}schema={schema}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def open_records(governance_url: str, tmp_path: Path, clock: Clock) -> Iterator[OpenRecords]:
    """A JobRecords over a new connection each call: as another server process holds."""
    opened: list[Database] = []

    def open_(*, stale_s: float = STALE_S, real_clock: bool = False) -> JobRecords:
        db = open_database(governance_url, tmp_path, "governance")
        opened.append(db)
        return JobRecords(db, stale_s=stale_s, clock=None if real_clock else clock)

    yield open_
    for db in opened:
        with contextlib.suppress(Exception):
            db.close()


def runner(name: str, pid: int = 4242) -> Runner:
    return Runner(name, pid, f"host-{name}")


# -- rows every process reads -----------------------------------------------------------


def test_a_job_one_process_adds_the_other_reads_owner_by_owner(
    open_records: OpenRecords, clock: Clock
) -> None:
    one, two = open_records(), open_records()
    a = one.add("ana", "nasa", runner("a"))
    assert a.status == "queued" and a.owner == "ana" and a.source == "nasa"
    assert len(a.id) == 24 and a.created_at.endswith("+00:00") and a.finished_at is None
    seen = two.get(a.id)
    assert seen == a and (seen.pid, seen.host) == (4242, "host-a")
    clock.now += 1
    b = two.add("ana", "later", runner("b"))
    other = one.add("bob", "nasa", runner("a"))
    assert [j.id for j in one.of("ana")] == [b.id, a.id]  # newest first
    assert [j.id for j in two.of("bob")] == [other.id]
    assert one.of("nobody") == [] and two.get("0" * 24) is None


def test_one_job_at_a_time_first_come_first_served(open_records: OpenRecords, clock: Clock) -> None:
    one, two = open_records(), open_records()
    ra, rb = runner("a"), runner("b")
    first = one.add("ana", "s1", ra)
    clock.now += 1
    second = two.add("bob", "s2", rb)
    clock.now += 1
    third = one.add("ana", "s3", ra)
    # The second may not jump the queue, the third waits its turn behind both.
    assert two.claim(second.id, rb) == "wait"
    assert one.claim(third.id, ra) == "wait"
    assert one.claim(first.id, ra) == "claimed"
    assert two.get(first.id).status == "running"  # type: ignore[union-attr]
    assert two.claim(second.id, rb) == "wait"  # the first is running
    assert one.claim(first.id, ra) == "gone"  # no longer queued: claimed once
    assert two.claim(third.id, rb) == "gone"  # not this runner's to claim
    one.finish(first.id, ra, "done", counts=Counts(3, 3, 2, 0))
    assert one.claim(third.id, ra) == "wait"  # the second came first
    assert two.claim(second.id, rb) == "claimed"
    two.finish(second.id, rb, "failed", error="no such folder")
    assert one.claim(third.id, ra) == "claimed"
    done, failed = one.get(first.id), one.get(second.id)
    assert done is not None and failed is not None
    assert (done.status, done.total, done.done, done.faces, done.failed) == ("done", 3, 3, 2, 0)
    assert done.started_at is not None and done.finished_at is not None
    assert (failed.status, failed.error) == ("failed", "no such folder")


def _claim_at_once(
    stores: list[JobRecords], runners: list[Runner], jobs: list[job_records.Job]
) -> list[str]:
    barrier = threading.Barrier(len(stores))
    outcomes: list[str] = []
    lock = threading.Lock()

    def claim(i: int) -> None:
        barrier.wait()
        out = stores[i].claim(jobs[i].id, runners[i])
        with lock:
            outcomes.append(out)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_processes_racing_for_the_slot_get_one_claim(open_records: OpenRecords) -> None:
    """Eight processes, each with one queued job, claim at once, over and over: exactly
    one claims in each round."""
    stores = [open_records(real_clock=True) for _ in range(8)]
    runners = [runner(f"r{i}") for i in range(8)]
    for _ in range(5):
        jobs = [s.add("ana", "s", r) for s, r in zip(stores, runners, strict=True)]
        for s, j in zip(stores, jobs, strict=True):  # all created: none may claim out of turn
            assert s.get(j.id) is not None
        outcomes = _claim_at_once(stores, runners, jobs)
        assert outcomes.count("claimed") == 1, outcomes
        running = [j for j in stores[0].of("ana") if j.status == "running"]
        assert len(running) == 1
        winner = next(i for i, j in enumerate(jobs) if j.id == running[0].id)
        stores[winner].finish(running[0].id, runners[winner], "done")
        for s, r in zip(stores, runners, strict=True):
            s.abandon(r, "round over")  # the rest, so the next round starts empty


def test_a_claim_waits_for_whoever_holds_the_slot(open_records: OpenRecords) -> None:
    """The claim is ordered by a lock on the one slot row, not by snapshots alone (which a
    job queued by a process with a clock behind could slip past): while another
    transaction holds the row, a claim waits, then goes on."""
    records, holder = open_records(), open_records()
    r = runner("a")
    job = records.add("ana", "s", r)
    outcome: list[str] = []
    with holder._db.tx() as tx:  # what a claim in another process holds
        tx.execute(f"SELECT name FROM ingest_slot WHERE name = 'ingest'{holder._for_update}")
        claimer = threading.Thread(target=lambda: outcome.append(records.claim(job.id, r)))
        claimer.start()
        claimer.join(0.5)
        assert claimer.is_alive() and outcome == []
    claimer.join(10)
    assert outcome == ["claimed"]


def test_progress_is_the_runners_alone_and_only_while_running(
    open_records: OpenRecords,
) -> None:
    one, two = open_records(), open_records()
    ra = runner("a")
    job = one.add("ana", "s", ra)
    one.progress(job.id, ra, Counts(9, 1, 1, 0))  # queued: nothing to show yet
    assert two.get(job.id).done == 0  # type: ignore[union-attr]
    assert one.claim(job.id, ra) == "claimed"
    one.progress(job.id, ra, Counts(9, 4, 3, 1))
    two.progress(job.id, runner("b"), Counts(9, 8, 8, 8))  # another process's: ignored
    seen = two.get(job.id)
    assert seen is not None and (seen.total, seen.done, seen.faces, seen.failed) == (9, 4, 3, 1)


# -- a dead process's job ------------------------------------------------------------------


def test_a_dead_processs_job_is_reported_then_written_interrupted(
    open_records: OpenRecords, clock: Clock
) -> None:
    one, two = open_records(), open_records()
    dead, alive = runner("dead", pid=111), runner("alive", pid=222)
    running = one.add("ana", "big", dead)
    assert one.claim(running.id, dead) == "claimed"
    queued = one.add("ana", "next", dead)
    mine = two.add("bob", "mine", alive)
    clock.now += STALE_S - 1
    two.beat(alive)  # the live process beats; the dead one does not
    assert two.get(running.id).status == "running"  # type: ignore[union-attr]
    assert two.claim(mine.id, alive) == "wait"  # not stale yet: the queue waits
    clock.now += 2
    for job_id in (running.id, queued.id):
        seen = two.get(job_id)
        assert seen is not None and seen.status == "failed"
        assert seen.error is not None and "interrupted" in seen.error
        assert "pid 111 on host-dead" in seen.error and seen.finished_at is not None
    assert two.get(mine.id).status == "queued"  # type: ignore[union-attr]
    # The next claim writes it so, and the queue goes on.
    assert two.claim(mine.id, alive) == "claimed"
    clock.now += 1000  # long after: the rows say failed, not "stale running"
    written = two.get(running.id)
    assert written is not None and written.status == "failed"
    # The declared-dead process turns out alive: its progress no longer counts, but its
    # outcome is the truth and is written.
    one.progress(running.id, dead, Counts(5, 5, 5, 0))
    assert two.get(running.id).done == 0  # type: ignore[union-attr]
    one.finish(running.id, dead, "done", counts=Counts(5, 5, 5, 0))
    assert two.get(running.id).status == "done"  # type: ignore[union-attr]


def test_finished_jobs_past_the_cap_go_oldest_first(
    open_records: OpenRecords, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_records, "KEEP_FINISHED", 3)
    records, r = open_records(), runner("a")
    ids = []
    for i in range(5):
        clock.now += 1
        job = records.add("ana", f"s{i}", r)
        assert records.claim(job.id, r) == "claimed"
        records.finish(job.id, r, "done")
        ids.append(job.id)
    clock.now += 1
    live = records.add("ana", "live", r)
    assert [j.id for j in records.of("ana")] == [live.id, *reversed(ids[2:])]


def test_abandon_fails_only_the_runners_queued_jobs(open_records: OpenRecords) -> None:
    records = open_records()
    ra, rb = runner("a"), runner("b")
    running = records.add("ana", "s", ra)
    assert records.claim(running.id, ra) == "claimed"
    queued, theirs = records.add("ana", "t", ra), records.add("ana", "u", rb)
    assert records.abandon(ra, "stopping") == 1
    statuses = {j.id: (j.status, j.error) for j in records.of("ana")}
    assert statuses == {
        running.id: ("running", None),
        queued.id: ("failed", "stopping"),
        theirs.id: ("queued", None),
    }


# -- IngestJobs: two server processes' job runners over one database -----------------------


class Gate:
    """An ingest that reports progress, then waits until let go (or fails if told)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.started = threading.Event()
        self.go = threading.Event()
        self.error = error
        self.calls: list[tuple[str, str]] = []

    def __call__(
        self, actor: Actor, source: str, progress: Callable[[Progress], None]
    ) -> IngestSummary:
        self.calls.append((actor.name, source))
        for done in range(1, 41):
            progress(Progress(total=40, done=done, faces=done, failed=0, elapsed=0.0))
        self.started.set()
        assert self.go.wait(30), "the test never let the ingest finish"
        if self.error is not None:
            raise self.error
        return IngestSummary(images_seen=40, images_new=40, images_skipped=0, faces_indexed=40)


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


ANA = Actor("ana", Role.ADMIN)
BOB = Actor("bob", Role.ADMIN)


def test_two_processes_runners_share_one_queue_and_every_status(
    open_records: OpenRecords,
) -> None:
    gate_a, gate_b = Gate(), Gate(error=InputError("source 'gone' has no folder"))
    a = IngestJobs(gate_a, open_records(real_clock=True), poll_s=0.05)
    b = IngestJobs(gate_b, open_records(real_clock=True), poll_s=0.05)
    try:
        first = a.start(ANA, "nasa")
        wait_for(gate_a.started.is_set)
        second = b.start(BOB, "gone")
        # Started through A, read through B (and only by its owner).
        assert b.get("ana", first.id).status == "running"
        with pytest.raises(NotFoundError):
            b.get("bob", first.id)
        assert [j.id for j in b.of("bob")] == [second.id]
        # Progress arrives through the row, throttled but flushed by the heartbeat.
        wait_for(lambda: b.get("ana", first.id).done == 40)
        time.sleep(0.3)
        assert not gate_b.started.is_set()  # one at a time, across the two
        assert a.get("bob", second.id).status == "queued"
        gate_a.go.set()
        wait_for(lambda: a.get("ana", first.id).status == "done")
        done = b.get("ana", first.id)
        assert (done.total, done.done, done.faces, done.failed) == (40, 40, 40, 0)
        wait_for(gate_b.started.is_set)
        gate_b.go.set()
        wait_for(lambda: a.get("bob", second.id).status == "failed")
        assert a.get("bob", second.id).error == "source 'gone' has no folder"
        assert gate_a.calls == [("ana", "nasa")] and gate_b.calls == [("bob", "gone")]
    finally:
        gate_a.go.set()
        gate_b.go.set()
        a.shutdown()
        b.shutdown()


def test_a_stopping_process_finishes_its_job_and_fails_its_queue(
    open_records: OpenRecords,
) -> None:
    gate = Gate()
    jobs = IngestJobs(gate, open_records(real_clock=True), poll_s=0.05)
    reader = open_records(real_clock=True)
    first = jobs.start(ANA, "one")
    wait_for(gate.started.is_set)
    queued = jobs.start(ANA, "two")
    stopper = threading.Thread(target=jobs.shutdown)
    stopper.start()
    time.sleep(0.2)
    assert stopper.is_alive()  # waits for the running job, as before
    gate.go.set()
    stopper.join(30)
    assert not stopper.is_alive()
    assert reader.get(first.id).status == "done"  # type: ignore[union-attr]
    left = reader.get(queued.id)
    assert left is not None and left.status == "failed" and "stopped" in (left.error or "")
    assert gate.calls == [("ana", "one")]


def test_a_job_whose_process_stops_beating_is_failed_and_the_queue_goes_on(
    open_records: OpenRecords,
) -> None:
    """A process that stopped answering (a frozen heartbeat) holds the queue only until
    its job goes stale; then another process's job runs."""
    gate_a, gate_b = Gate(), Gate()
    a = IngestJobs(gate_a, open_records(stale_s=1.0, real_clock=True), poll_s=0.05)
    b = IngestJobs(gate_b, open_records(stale_s=1.0, real_clock=True), poll_s=0.05)
    try:
        stuck = a.start(ANA, "big")
        wait_for(gate_a.started.is_set)
        a._stop_beating.set()  # as a SIGKILL would: no more beats (the thread stays)
        waiting = b.start(BOB, "small")
        time.sleep(0.5)
        assert not gate_b.started.is_set()
        wait_for(lambda: b.get("ana", stuck.id).status == "failed", timeout=10)
        assert "interrupted" in (b.get("ana", stuck.id).error or "")
        wait_for(gate_b.started.is_set, timeout=10)
        gate_b.go.set()
        wait_for(lambda: a.get("bob", waiting.id).status == "done")
    finally:
        gate_a.go.set()
        gate_b.go.set()
        a.shutdown()
        b.shutdown()
