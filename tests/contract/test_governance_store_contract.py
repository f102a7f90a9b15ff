"""Governance state contract: the audit chain, the governance store, accounts and search
records behave the same on SQLite (today's files: the oracle) and on PostgreSQL.

The PostgreSQL half runs when FACEINDEX_TEST_PG_URL is set (bash scripts/start-postgres.sh);
each test gets a schema of its own, dropped at the end.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faceindex.errors import AuditError, ConfigError, InputError, NotFoundError
from faceindex.governance.audit import AuditEvent, AuditLog
from faceindex.governance.base import ExportRecord, Receipt
from faceindex.governance.database import Database, open_database
from faceindex.governance.store import GovernanceStore
from faceindex.server.accounts import AccountStore
from faceindex.server.searches import ShownFaces
from tests.contract.builders import PG_ENV

pytestmark = pytest.mark.contract

KEY = b"contract key of thirty-two bytes"
DIM = 4
OpenDb = Callable[[str], Database]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _pg_admin_url() -> str:
    url = os.environ.get(PG_ENV, "")
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (bash scripts/start-postgres.sh prints one)")
    psycopg = pytest.importorskip(
        "psycopg", reason="needs psycopg: pip install 'faceindex[postgres]'"
    )
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(f"{PG_ENV} is set but PostgreSQL is not reachable there: {exc}")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def governance_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A ``governance_url`` naming fresh, empty governance state of the parametrised kind."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'gov'}"
        return
    admin = _pg_admin_url()
    schema = f"g_{uuid.uuid4().hex[:16]}"
    sep = "&" if "?" in admin else "?"
    yield f"{admin}{sep}schema={schema}"
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def open_db(governance_url: str, tmp_path: Path) -> Iterator[OpenDb]:
    """Opens one part's database (a new connection each call: as another process would)."""
    opened: list[Database] = []

    def open_(part: str) -> Database:
        db = open_database(governance_url, tmp_path, part)
        opened.append(db)
        return db

    yield open_
    for db in opened:
        with contextlib.suppress(Exception):
            db.close()


def _tamper(db: Database, sql: str, params: tuple[object, ...] = ()) -> None:
    """What an administrator of the database could do: drop the guards, then edit."""
    if db.dialect == "sqlite":
        raw = sqlite3.connect(db.url.removeprefix("sqlite:///"))
        for name in ("audit_no_update", "audit_no_delete"):
            raw.execute(f"DROP TRIGGER IF EXISTS {name}")
        raw.execute(sql, params)
        raw.commit()
        raw.close()
        return
    with db.tx() as tx:
        tx.execute("ALTER TABLE audit DISABLE TRIGGER USER")
        tx.execute(sql, params)
        tx.execute("ALTER TABLE audit ENABLE TRIGGER USER")


def _event(i: int, action: str = "search") -> AuditEvent:
    return AuditEvent(action, "ana", "investigator", case=f"C-{i}", face_ids=(i, i + 1))


# -- audit chain --------------------------------------------------------------------------


def test_audit_chain_appends_reopens_and_verifies(open_db: OpenDb) -> None:
    log = AuditLog(open_db("audit"), key=KEY)
    for i in range(5):
        assert log.append(_event(i)).seq == i + 1
    report = log.verify()
    assert report.ok and report.entries == 5 and report.keyed and report.legacy == 0
    head = log.head()
    assert head is not None and head.seq == 5 and head.valid(KEY)
    log.close()
    again = AuditLog(open_db("audit"), key=KEY)
    assert again.count() == 5 and again.verify().ok
    entry = again.get(3)
    assert entry is not None and entry.event.case == "C-2" and entry.event.face_ids == (2, 3)
    assert [e.seq for e in again.entries()] == [1, 2, 3, 4, 5]


def test_audit_refuses_another_key_and_unkeyed_writes(open_db: OpenDb) -> None:
    AuditLog(open_db("audit"), key=KEY).append(_event(0))
    with pytest.raises(AuditError, match="keyed with key"):
        AuditLog(open_db("audit"), key=b"another key, thirty-two bytes ok")
    with pytest.raises(AuditError, match="keyed"):
        AuditLog(open_db("audit")).append(_event(1))
    with pytest.raises(InputError):
        AuditLog(open_db("audit"), key=KEY).append(AuditEvent("no-such-action", "a", "admin"))


def test_audit_table_refuses_edits(open_db: OpenDb) -> None:
    db = open_db("audit")
    AuditLog(db, key=KEY).append(_event(0))
    for sql in ("UPDATE audit SET body = '{}' WHERE seq = 1", "DELETE FROM audit"):
        with pytest.raises(db.errors, match="append-only"), db.tx() as tx:
            tx.execute(sql)


def test_an_edited_entry_is_named_by_verify(open_db: OpenDb) -> None:
    log = AuditLog(open_db("audit"), key=KEY)
    for i in range(6):
        log.append(_event(i))
    body = log.db.rows("SELECT body FROM audit WHERE seq = 4")[0][0]
    _tamper(log.db, "UPDATE audit SET body = ? WHERE seq = 4", (body.replace("C-3", "C-x"),))
    report = AuditLog(open_db("audit"), key=KEY).verify()
    assert not report.ok and report.first_bad == 4 and "keyed hash" in report.reason


def test_a_cut_tail_is_found_by_the_head(open_db: OpenDb) -> None:
    log = AuditLog(open_db("audit"), key=KEY)
    for i in range(6):
        log.append(_event(i))
    _tamper(log.db, "DELETE FROM audit WHERE seq >= 5")
    report = AuditLog(open_db("audit"), key=KEY).verify()
    assert not report.ok and "truncated" in report.reason


def test_an_append_never_moves_the_head_off_damage(open_db: OpenDb) -> None:
    log = AuditLog(open_db("audit"), key=KEY)
    for i in range(4):
        log.append(_event(i))
    _tamper(log.db, "DELETE FROM audit WHERE seq = 4")
    again = AuditLog(open_db("audit"), key=KEY)
    again.append(_event(9))  # seq 4 again, but another entry than the head names
    head = again.head()
    assert head is not None and head.seq == 4
    assert not again.verify().ok


def _append_many(url: str, home: str, n: int, worker: int) -> None:
    log = AuditLog(open_database(url, Path(home), "audit", secure_delete=False), key=KEY)
    try:
        for i in range(n):
            log.append(AuditEvent("search", f"worker-{worker}", "investigator", case=str(i)))
    finally:
        log.close()


def test_several_processes_append_one_unbroken_chain(
    governance_url: str, tmp_path: Path, open_db: OpenDb
) -> None:
    AuditLog(open_db("audit"), key=KEY).append(_event(0))  # keyed before the writers start
    ctx = multiprocessing.get_context("spawn")
    workers, each = 4, 25
    procs = [
        ctx.Process(target=_append_many, args=(governance_url, str(tmp_path), each, w))
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    log = AuditLog(open_db("audit"), key=KEY)
    report = log.verify()
    assert report.ok, report.reason
    entries = list(log.entries())
    assert [e.seq for e in entries] == list(range(1, workers * each + 2))
    by_worker = {f"worker-{w}": 0 for w in range(workers)}
    for e in entries[1:]:
        by_worker[e.event.actor] += 1
    assert set(by_worker.values()) == {each}
    head = log.head()
    assert head is not None and head.seq == workers * each + 1


def test_threads_of_one_process_append_one_chain(open_db: OpenDb) -> None:
    log = AuditLog(open_db("audit"), key=KEY)
    other = AuditLog(open_db("audit"), key=KEY)  # another connection, as another process has
    errors: list[BaseException] = []

    def write(target: AuditLog) -> None:
        try:
            for i in range(20):
                target.append(_event(i))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in (log, other, log, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert log.verify().ok and log.count() == 80


# -- governance store ---------------------------------------------------------------------


def _receipt(rid: str, at: str = "2026-01-01T00:00:00+00:00") -> Receipt:
    return Receipt(rid, "face", "1,2", 2, 1, "ana", "admin", at, "d" * 64, exports=("e-1",))


def test_suppressions_keep_templates_and_refuse_another_model(open_db: OpenDb) -> None:
    store = GovernanceStore(open_db("governance"), dim=DIM)
    vecs = np.arange(8, dtype=np.float32).reshape(2, DIM)
    sup = store.add_suppression(vecs, actor="po", reference="REQ-1")
    assert [s.id for s in store.suppressions()] == [sup.id] and sup.templates == 2
    np.testing.assert_array_equal(store.suppression_templates(), vecs)
    with pytest.raises(ConfigError, match="another model"):
        GovernanceStore(open_db("governance"), dim=DIM + 1).suppression_templates()


def test_receipts_probes_and_exports_round_trip(open_db: OpenDb) -> None:
    store = GovernanceStore(open_db("governance"), dim=DIM)
    probe = np.ones((1, DIM), dtype=np.float32)
    store.add_receipt(_receipt("r-1"), [3, 1], [7], probe, "2026-02-01T00:00:00+00:00")
    store.add_receipt(_receipt("r-0", at="2025-12-01T00:00:00+00:00"), [9], [8])
    other = GovernanceStore(open_db("governance"), dim=DIM)  # another process's view
    receipt, faces, images = other.receipt("r-1")
    assert receipt == _receipt("r-1") and faces == [1, 3] and images == [7]
    assert [r.id for r in other.receipts()] == ["r-0", "r-1"]
    got = other.receipt_probe("r-1")
    assert got is not None and got.shape == (1, DIM)
    assert other.receipt_probe("r-0") is None
    assert other.drop_expired_probes("2026-01-15T00:00:00+00:00") == 0
    assert other.drop_expired_probes("2026-03-01T00:00:00+00:00") == 1
    assert store.receipt_probe("r-1") is None
    with pytest.raises(NotFoundError):
        store.receipt("r-404")
    rec = ExportRecord("x-1", "2026-01-01", "ana", "source", "/o.csv", 3, "s" * 64, ("a", "b"))
    store.add_export(rec)
    assert other.exports() == [rec] and other.exports("b") == [rec] and other.exports("c") == []


def test_intents_tombstones_and_lifts(open_db: OpenDb) -> None:
    store = GovernanceStore(open_db("governance"), dim=DIM)
    a, b, c = "a" * 64, "b" * 64, "c" * 64
    store.add_intent("i-1", {"faces": [1]}, "r-1", 10, [a, b, b])
    store.add_intent("i-2", {"faces": [2]}, "r-2", 11, [c])
    assert [(i, r, s) for i, _, r, s in store.pending_intents()] == [
        ("i-1", "r-1", 10),
        ("i-2", "r-2", 11),
    ]
    assert store.tombstoned([a, c, "f" * 64]) == {a: ("r-1", "pending"), c: ("r-2", "pending")}
    store.complete_intent("i-1", _receipt("r-1"), [1], [5], [a])  # b was not really removed
    store.abort_intent("i-2")
    assert store.pending_intents() == []
    assert store.tombstoned([a, b, c]) == {a: ("r-1", "held")}
    assert [(s, r) for s, r, _ in store.tombstones()] == [(a, "r-1")]
    assert store.receipt_digests("r-1") == {a: "held"}
    assert store.lift_tombstones(receipt_id="r-1") == [a]
    assert store.tombstoned([a]) == {} and store.receipt_digests("r-1") == {a: "lifted"}


def test_erasure_lock_is_one_at_a_time_across_connections(open_db: OpenDb) -> None:
    one = GovernanceStore(open_db("governance"), dim=DIM)
    two = GovernanceStore(open_db("governance"), dim=DIM)
    with one.erasure_lock() as held:
        assert held
        with two.erasure_lock(blocking=False) as also:
            assert not also
    with two.erasure_lock(blocking=False) as now:
        assert now


# -- accounts and search records ----------------------------------------------------------


def test_accounts_add_authenticate_revoke(open_db: OpenDb) -> None:
    store = AccountStore(open_db("accounts"))
    token = store.add("ana", "investigator")
    with pytest.raises(InputError, match="already exists"):
        store.add("ana", "admin")
    other = AccountStore(open_db("accounts"))
    account = other.authenticate(token)
    assert account is not None and account.name == "ana" and account.active
    assert other.authenticate(token + "x") is None
    assert not store.revoke("ana").active
    assert other.authenticate(token) is None
    with pytest.raises(InputError, match="already revoked"):
        other.revoke("ana")
    with pytest.raises(NotFoundError):
        other.revoke("bob")
    assert [a.name for a in other.accounts()] == ["ana"]


def test_search_records_answer_any_process_and_keep_the_rules(open_db: OpenDb) -> None:
    clock = Clock()
    here = ShownFaces(open_db("governance"), ttl_s=10, clock=clock)
    there = ShownFaces(open_db("governance"), ttl_s=10, clock=clock)
    sid = here.record("ann", [4, 2])
    assert len(sid) == 24 and int(sid, 16) >= 0  # the id's form is what links carry
    there.check("ann", sid, 2)
    with pytest.raises(NotFoundError, match="no search"):
        there.check("bob", sid, 2)
    with pytest.raises(NotFoundError, match="not among"):
        there.check("ann", sid, 3)
    clock.now += 11
    with pytest.raises(NotFoundError, match="no search"):
        there.check("ann", sid, 2)


def test_search_records_drop_the_oldest_past_the_cap(open_db: OpenDb) -> None:
    clock = Clock()
    shown = ShownFaces(open_db("governance"), max_entries=3, clock=clock)
    ids = []
    for i in range(5):
        clock.now += 1
        ids.append(shown.record("ann", [i]))
    for i, sid in enumerate(ids):
        if i < 2:
            with pytest.raises(NotFoundError):
                shown.check("ann", sid, i)
        else:
            shown.check("ann", sid, i)


# -- one transcript, compared with the SQLite oracle --------------------------------------


def _transcript(open_: Callable[[str], Database]) -> list[Any]:
    """A run of every part's operations, without the values that differ by run (times,
    tokens, random ids)."""
    out: list[Any] = []
    log = AuditLog(open_("audit"), key=KEY)
    for i in range(3):
        e = log.append(_event(i, "deletion" if i % 2 else "search"))
        out.append((e.seq, e.event.action, e.event.face_ids))
    out.append((log.verify().ok, log.count()))
    store = GovernanceStore(open_("governance"), dim=DIM)
    store.add_suppression(np.eye(DIM, dtype=np.float32)[:2], actor="po", reference="R")
    out.append(store.suppression_templates().tolist())
    store.add_intent("i-1", {"x": 1}, "r-1", 2, ["a" * 64])
    store.complete_intent("i-1", _receipt("r-1"), [2, 1], [3], ["a" * 64])
    out.append((store.receipt("r-1")[1:], store.tombstoned(["a" * 64]), store.pending_intents()))
    accounts = AccountStore(open_("accounts"))
    accounts.add("zed", "auditor")
    accounts.add("amy", "admin")
    accounts.revoke("zed")
    out.append([(a.name, a.role.value, a.active) for a in accounts.accounts()])
    for part in (log, store, accounts):
        part.close()
    return out


def test_every_part_matches_the_sqlite_oracle(open_db: OpenDb, tmp_path: Path) -> None:
    oracle_home = tmp_path / "oracle"
    oracle = _transcript(lambda part: open_database("", oracle_home, part))
    assert _transcript(open_db) == oracle


# -- rate limits shared by every process of a home (rate_limit_scope = "home") -------------


def test_shared_rate_limits_are_one_budget_per_key(open_db: OpenDb) -> None:
    from faceindex.server.ratelimit_shared import SharedRateLimiter

    clock = Clock()
    here = SharedRateLimiter(open_db("governance"), per_minute=60, burst=3, clock=clock)
    there = SharedRateLimiter(open_db("governance"), per_minute=60, burst=3, clock=clock)
    assert [here.take("account:ana"), there.take("account:ana"), here.take("account:ana")] == [
        0,
        0,
        0,
    ]
    assert there.waiting("account:ana") == 1 and there.take("account:ana") == 1
    assert here.take("account:bob") == 0  # another key, its own bucket
    clock.now += 2.0  # one request a second comes back
    assert here.waiting("account:ana") == 0
    assert there.take("account:ana") == 0 and here.take("account:ana") == 0
    assert there.take("account:ana") == 1


def _take_many(url: str, home: str, n: int, out: Any) -> None:
    from faceindex.server.ratelimit_shared import SharedRateLimiter

    limiter = SharedRateLimiter(
        open_database(url, Path(home), "governance"), per_minute=1, burst=50
    )
    out.put(sum(1 for _ in range(n) if limiter.take("account:ana") == 0))
    limiter.close()


def test_shared_rate_limits_hold_across_processes(governance_url: str, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_take_many, args=(governance_url, str(tmp_path), 30, out))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    allowed = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    # 90 requests against a burst of 50 (refill ~1 a minute): 50 pass, whoever sent them.
    assert sum(allowed) in (50, 51)
